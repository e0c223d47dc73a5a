"""Warehouse mode with leaves written by Spark (LeafWarehouse.write_window on the shared local
session): the dashboard and the daily report read them through DuckDB views and equal the
DuckDB store; a Spark write that was never committed is not read. Skips without pyspark or
Java, except under CI (as tests/test_spark_warehouse.py).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import sys
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from monitor.engine import Window

from spark_session import require_spark

pytestmark = pytest.mark.spark

require_spark()

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
sys.path.insert(0, str(Path(__file__).parent))
from dashboard_fixtures import NOW, START, build_project  # noqa: E402
from test_warehouse_views import _history, _same  # noqa: E402

from monitor.catalog import load_catalog  # noqa: E402
from monitor.report.gather import gather_report  # noqa: E402
from monitor.store import Store, leaves_table  # noqa: E402
from monitor.warehouse import open_store  # noqa: E402
from monitor.warehouse.leaves import DATA, LeafWarehouse  # noqa: E402

WEEK = dt.timedelta(days=7)


@pytest.fixture(scope="module")
def written(spark, tmp_path_factory):
    """The dashboard fixture project, and a copy whose leaves Spark wrote to the warehouse: the
    whole history in one window, then the last week written again (a replaced window)."""
    base = tmp_path_factory.mktemp("whview_spark")
    duck = build_project(base / "duck")
    catalog = load_catalog(duck.metrics_dir)
    prefix = base / "ware" / "leaves"
    house = LeafWarehouse(prefix, spark)
    for metric in catalog.metrics.values():
        rows = Store(duck.store_path).read_leaves(metric)
        table = pa.Table.from_pandas(rows, preserve_index=False)
        house.write_window(metric, Window(START, NOW), table)
        last = table.filter(pc.greater_equal(table["ts"], pa.scalar(NOW - WEEK, pa.timestamp("us"))))
        house.write_window(metric, Window(NOW - WEEK, NOW), last)
    store_path = base / "ware" / "store.duckdb"
    with duckdb.connect(str(store_path)) as con:  # the small tables only, as warehouse mode keeps them
        con.execute(f"ATTACH '{duck.store_path}' AS duck (READ_ONLY)")
        for (name,) in con.execute("SELECT table_name FROM information_schema.tables WHERE table_catalog = 'duck'"
                                   " AND table_schema = 'main' AND table_type = 'BASE TABLE'").fetchall():
            if not name.startswith("leaves__"):
                con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM duck."{name}"')
        con.execute("DETACH duck")
    sections = {**duck.sections, "store": {"leaves": "spark", "path": str(prefix)}}
    ware = dataclasses.replace(duck, store_path=store_path, sections=sections)
    return duck, ware, catalog, house


def test_spark_written_leaves_give_the_same_dashboard_history(written, spark):
    duck, ware, catalog, house = written
    assert len({p.split("/")[1] for p in house.manifest("fraud_rate")["days"].values()}) == 2  # two writes live
    _same(_history(open_store(ware, session=spark), catalog), _history(Store(duck.store_path), catalog))


def test_spark_written_leaves_give_the_same_report(written, spark):
    duck, ware, catalog, house = written
    day = (NOW - dt.timedelta(days=1)).date()
    want = gather_report(duck, date=day, store=Store(duck.store_path), catalog=catalog)
    got = gather_report(ware, date=day, store=open_store(ware, session=spark), catalog=catalog)
    assert got.metrics == want.metrics and got.movers == want.movers and got.incidents == want.incidents
    assert got.movers


def test_an_uncommitted_spark_write_is_not_read(written, spark):
    """A write whose job died before the manifest was replaced: its Parquet files exist, unread."""
    duck, ware, catalog, house = written
    metric = catalog.metrics["order_count"]
    store = open_store(ware, session=spark)
    sql = f'SELECT count(*), sum(value) FROM "{leaves_table(metric.name)}"'
    with store.connect(read_only=True) as con:
        before = con.execute(sql).fetchone()
    stray = prefix_of(ware) / metric.name / DATA / uuid.uuid4().hex
    (house.frame(metric).selectExpr("ts", "country", "channel", "value * 1000 AS value",
                                    "date_format(ts, 'yyyy-MM-dd') AS day")
     .write.partitionBy("day").parquet(str(stray)))
    assert list(stray.glob("day=*/*.parquet"))
    with store.connect(read_only=True) as con:
        assert con.execute(sql).fetchone() == before


def prefix_of(config) -> Path:
    return Path(config.sections["store"]["path"])
