"""Warehouse mode: the dashboard and the daily report read the leaves through DuckDB views of the
day folders the manifests name, without Spark, and show the same per-segment history as the
DuckDB store.

The leaves are laid out as the warehouse's writer lays them (``<metric>/data/<write id>/
day=YYYY-MM-DD/*.parquet`` and ``_manifest.json`` committed by ``LeafWarehouse._commit``), here
written by DuckDB's Hive-partitioned COPY from the DuckDB store of the same project: no Spark is
needed to read them, so none is needed to write this test's copy either (the Spark-written files
are checked in tests/test_warehouse_views_spark.py).
"""
from __future__ import annotations

import datetime as dt
import shutil
import sys
import uuid
from pathlib import Path

import duckdb
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from dashboard_fixtures import NOW, START, build_project, chart_data, run_app, texts  # noqa: E402

from monitor.catalog import load_catalog  # noqa: E402
from monitor.config import load_config  # noqa: E402
from monitor.dashboard import queries  # noqa: E402
from monitor.report.gather import gather_report  # noqa: E402
from monitor.store import Store, leaves_table  # noqa: E402
from monitor.warehouse import open_store, reading_store  # noqa: E402
from monitor.warehouse.leaves import DATA, LeafWarehouse  # noqa: E402

SEGMENTS = {"fraud_rate": [{}, {"country": "BR"}, {"country": "BR", "device_os": "android"}, {"channel": "web"}],
            "chargeback_rate": [{}, {"country": "BR", "payment_method": "card"}],
            "order_count": [{}, {"country": "US", "channel": "web"}, {"country": "IS"}]}


def export_leaves(store_path: Path, prefix: Path, metric) -> str:
    """The metric's leaves of the DuckDB store in the warehouse's layout; returns the write id."""
    write_id = uuid.uuid4().hex
    target = prefix / metric.name / DATA / write_id
    target.mkdir(parents=True)
    cols = ", ".join(f'"{c}"' for c in ["ts", *metric.dimensions, *metric.measures])
    with duckdb.connect(str(store_path), read_only=True) as con:
        con.execute(f"COPY (SELECT {cols}, strftime(ts, '%Y-%m-%d') AS day FROM \"{leaves_table(metric.name)}\")"
                    f" TO '{target}' (FORMAT parquet, PARTITION_BY (day))")
    days = sorted(p.name.split("=", 1)[1] for p in target.iterdir() if p.name.startswith("day="))
    manifest = {"columns": ["ts", *metric.dimensions, *metric.measures],
                "days": {d: f"{DATA}/{write_id}/day={d}" for d in days}}
    LeafWarehouse(prefix, None)._commit(metric.name, manifest)  # the writer's own atomic commit
    return write_id


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    """The dashboard fixture project twice: leaves in the store file, and in a warehouse folder
    (the store file a copy without any leaves table)."""
    base = tmp_path_factory.mktemp("whview")
    duck = build_project(base / "duck")
    catalog = load_catalog(duck.metrics_dir)
    root = base / "ware"
    shutil.copytree(duck.root, root)
    (root / "monitor.toml").write_text((duck.root / "monitor.toml").read_text()
                                       + '\n[store]\nleaves = "spark"\npath = "leaves"\n')
    ware = load_config(root / "monitor.toml")
    with duckdb.connect(str(ware.store_path)) as con:
        for name in catalog.metrics:
            con.execute(f'DROP TABLE "{leaves_table(name)}"')
    for metric in catalog.metrics.values():
        export_leaves(duck.store_path, root / "leaves", metric)
    return duck, ware, catalog


def _history(store: Store, catalog) -> dict:
    """What the metric page draws: data range, each segment's series, the values of a dimension."""
    out = {}
    with queries.reading(store) as con:
        headers = queries.metric_headers(con)
        for name, segments in SEGMENTS.items():
            out[name, "range"] = queries.data_range(con, name)
            for segment in segments:
                frame = queries.metric_series(con, headers[name], segment, start=START + dt.timedelta(days=14),
                                              end=NOW, min_size=30)
                out[name, tuple(segment.items())] = frame
            dimension = catalog.metrics[name].dimensions[0]
            out[name, "values"] = queries.slice_values(con, headers[name], dimension, within={},
                                                       since=NOW - dt.timedelta(days=28), min_size=30)
        out["overview"] = queries.overview_frame(con, headers)
    return out


def _same(a, b) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], pd.DataFrame):
            pd.testing.assert_frame_equal(a[key], b[key], check_dtype=False, obj=str(key))
        else:
            assert a[key] == b[key], key


def test_store_file_has_no_leaves_but_readers_see_views(projects):
    duck, ware, catalog = projects
    with duckdb.connect(str(ware.store_path), read_only=True) as con:
        assert not [r for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
                    if r[0].startswith("leaves__")]
    store = open_store(ware)
    assert type(store).__name__ == "WarehouseStore"
    with store.connect(read_only=True) as con:
        for name in catalog.metrics:
            got = con.execute(f'SELECT count(*), sum(ts::DATE = DATE \'2026-04-20\') FROM "{leaves_table(name)}"').fetchone()
            with Store(duck.store_path).connect(read_only=True) as dcon:
                want = dcon.execute(f'SELECT count(*), sum(ts::DATE = DATE \'2026-04-20\') FROM "{leaves_table(name)}"').fetchone()
            assert got == want and got[0] > 0, name
            columns = con.execute(f'DESCRIBE "{leaves_table(name)}"').fetchall()
            assert [(c[0], c[1]) for c in columns][0] == ("ts", "TIMESTAMP")
            assert "day" not in [c[0] for c in columns]  # the partition folder is no leaf column


def test_dashboard_segment_history_equals_the_duckdb_store(projects):
    duck, ware, catalog = projects
    want = _history(Store(duck.store_path), catalog)
    for store in (open_store(ware), reading_store(ware.store_path, ware.root / "leaves")):
        got = _history(store, catalog)
        _same(got, want)
    # the comparison is not vacuous: the slice series come from the leaves, with values in them
    two_dims = want["fraud_rate", (("country", "BR"), ("device_os", "android"))]
    assert len(two_dims) == 43 and two_dims["observed"].notna().all() and two_dims["expected"].isna().all()
    assert want["fraud_rate", "values"][0][:1] == ["US"]


def test_report_metric_day_figures_equal_the_duckdb_store(projects):
    duck, ware, catalog = projects
    day = (NOW - dt.timedelta(days=1)).date()
    want = gather_report(duck, date=day, store=Store(duck.store_path), catalog=catalog)
    got = gather_report(ware, date=day, catalog=catalog)  # opens the warehouse store itself
    assert got.metrics == want.metrics
    assert got.movers == want.movers
    assert got.incidents == want.incidents
    assert [m.buckets for m in got.metrics] == [1, 1, 1] and all(len(m.history) > 7 for m in got.metrics)
    assert got.movers  # per-segment figures: movers come from the leaves


def test_a_folder_the_manifest_does_not_name_is_not_read(projects, tmp_path):
    duck, ware, catalog = projects
    metric = catalog.metrics["order_count"]
    prefix = tmp_path / "leaves"
    shutil.copytree(ware.root / "leaves", prefix)
    store = reading_store(ware.store_path, prefix)
    with store.connect(read_only=True) as con:
        before = con.execute(f'SELECT count(*), sum(value) FROM "{leaves_table(metric.name)}"').fetchone()
    # a half-written window: a new write folder with a day already in the manifest, never committed
    stray = prefix / metric.name / DATA / uuid.uuid4().hex / "day=2026-04-20"
    stray.mkdir(parents=True)
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT TIMESTAMP '2026-04-20' AS ts, 'US' AS country, 'web' AS channel, 1e9::DOUBLE AS value)"
                    f" TO '{stray / 'part-0.parquet'}' (FORMAT parquet)")
    with store.connect(read_only=True) as con:
        after = con.execute(f'SELECT count(*), sum(value) FROM "{leaves_table(metric.name)}"').fetchone()
    assert after == before
    # committed, the same folder is read: the test can see a folder that is read
    manifest = LeafWarehouse(prefix, None).manifest(metric.name)
    manifest["days"]["2026-04-20"] = str(stray.relative_to(prefix / metric.name))
    LeafWarehouse(prefix, None)._commit(metric.name, manifest)
    with store.connect(read_only=True) as con:
        committed = con.execute(f'SELECT count(*), max(value) FROM "{leaves_table(metric.name)}"').fetchone()
    assert committed[1] == 1e9 and committed[0] < before[0]


def test_an_unreadable_warehouse_path_keeps_todays_behaviour(projects, tmp_path):
    """A prefix DuckDB cannot list (here: missing; so would be an object-store URL) gives no
    views: the dashboard shows no leaf history, as before, and does not fail."""
    duck, ware, catalog = projects
    for prefix in (tmp_path / "not-mounted", "s3a://risk-lake/monitor"):
        store = reading_store(ware.store_path, prefix)
        with queries.reading(store) as con:
            assert queries.data_range(con, "fraud_rate") is None
            headers = queries.metric_headers(con)
            assert queries.slice_values(con, headers["fraud_rate"], "country", within={},
                                        since=START, min_size=30) == ([], 0)


def test_the_dashboard_app_draws_a_two_dimension_slice_from_the_warehouse(projects):
    """The app itself (AppTest), configured for warehouse mode, draws the same slice series."""
    duck, ware, catalog = projects
    segment = "country=BR&device_os=android"
    want = run_app(duck, page="metric", metric="fraud_rate", slice=segment)
    got = run_app(ware, page="metric", metric="fraud_rate", slice=segment)
    assert not got.exception
    assert "summed from the leaf rows" in texts(got)
    got_series = chart_data(got.get("vega_lite_chart")[0])["series"]
    want_series = chart_data(want.get("vega_lite_chart")[0])["series"]
    assert len(got_series) > 30
    pd.testing.assert_frame_equal(got_series, want_series)
