"""Warehouse mode ([store] leaves = "spark"): leaves on Spark, slices, detection and attribution
there, and the same incidents as the DuckDB path on the demo world.

One local[2] SparkSession for the whole test run (conftest's `spark` fixture, shared with
tests/test_spark_engine.py). Skips without pyspark or Java, except under CI.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from monitor.engine import Window

from spark_session import connect_server_jar, importable, require, require_spark

pytestmark = pytest.mark.spark

require_spark()

DAYS = 63
# ratio metrics with the leaf screen (4 and 3 dimensions), a sum metric and one that follows
# another (chargeback_rate follows fraud_rate): every code path, in a few minutes of local[2]
METRICS = ["fraud_rate", "orders", "payment_decline_rate", "refund_rate", "chargeback_rate"]
# The Python workers of local mode run this interpreter (its venv has numpy, pandas, monitor).
# Set at collection, before any module's fixture starts the shared SparkContext.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


@dataclasses.dataclass
class Worlds:
    duck: object  # ProjectConfig, leaves in the DuckDB store
    ware: object  # ProjectConfig, leaves on Spark
    duck_store: object
    ware_store: object
    catalog: object
    end: dt.datetime


def _warehouse_config(config, folder: Path):
    sections = {**config.sections, "store": {"leaves": "spark", "path": str(folder / "leaves")}}
    return dataclasses.replace(config, store_path=folder / "ware.duckdb", sections=sections)


@pytest.fixture(scope="session")
def worlds(spark, tmp_path_factory) -> Worlds:
    """The demo world backfilled twice from the same source: into the DuckDB store and into
    the warehouse (whole history in one window per metric, then detect and attribute)."""
    from monitor.demo.project import build_demo_project
    from monitor.pipeline import backfill_plan, compute, detect_and_attribute, load_project_catalog
    from monitor.warehouse import open_store

    folder = tmp_path_factory.mktemp("warehouse_demo")
    project = build_demo_project(folder / "demo", days=DAYS, scale=0.25)
    duck = project.config
    ware = _warehouse_config(duck, folder)
    catalog = load_project_catalog(duck)
    duck_store = open_store(duck)
    ware_store = open_store(ware, session=spark)
    assert type(ware_store).__name__ == "WarehouseStore" and type(duck_store).__name__ == "Store"
    for config, store in ((duck, duck_store), (ware, ware_store)):
        plan = backfill_plan(catalog.select(METRICS), project.start, project.end, chunk=DAYS * 24)
        result = compute(config, plan, trigger="backfill", store=store)
        assert not result.failures, result.failures
        cycle = detect_and_attribute(config, catalog.select(METRICS), now=project.end, store=store)
        assert not cycle.detect_failures, cycle.detect_failures
    return Worlds(duck, ware, duck_store, ware_store, catalog, project.end)


def _incidents(store) -> list[dict]:
    with store.connect(read_only=True) as con:
        rows = con.execute("SELECT incident_id, metric, slice, start_ts, end_ts, direction, kind, status, parent_id,"
                           " explanation_json FROM incidents ORDER BY incident_id").df().to_dict("records")
    for row in rows:
        explanation = json.loads(row.pop("explanation_json") or "{}")
        row["top_causes"] = [c.get("segment") for c in (explanation.get("causes") or [])[:3]]
    return rows


def assert_only_live_writes(house, name: str) -> None:
    """The metric's data folder holds only the writes its manifest names: replaced, failed and
    orphaned writes were removed."""
    live = {p.split("/")[1] for p in house.manifest(name)["days"].values()}
    assert {p.name for p in (house.folder(name) / "data").iterdir()} == live


# -- the leaves ----------------------------------------------------------------------------------
def test_leaves_in_the_warehouse_not_in_the_store_file(worlds):
    import duckdb

    with duckdb.connect(str(worlds.ware.store_path), read_only=True) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        runs = con.execute("SELECT count(*) FROM runs WHERE status = 'ok'").fetchone()[0]
    assert not [t for t in tables if t.startswith("leaves__")]
    assert runs == len(METRICS)
    for name in METRICS:
        metric = worlds.catalog.metrics[name]
        days = worlds.ware_store.warehouse.manifest(name)["days"]
        assert len(days) == DAYS, name  # one folder per day
        # the DuckDB source's rows came staged as Parquet (monitor.warehouse.staging), removed once written
        incoming = worlds.ware_store.warehouse.folder(name) / "incoming"
        assert incoming.is_dir() and not list(incoming.iterdir()), name
        got = worlds.ware_store.read_leaves(metric)
        want = worlds.duck_store.read_leaves(metric)
        keys = ["ts", *metric.dimensions]
        got, want = got.sort_values(keys).reset_index(drop=True), want.sort_values(keys).reset_index(drop=True)
        assert got[keys].astype(str).equals(want[keys].astype(str)), name
        np.testing.assert_allclose(got[list(metric.measures)].to_numpy(), want[list(metric.measures)].to_numpy())


def test_a_window_is_replaced_and_rewriting_it_changes_nothing(worlds, spark, tmp_path):
    from monitor.warehouse.leaves import LeafWarehouse

    metric = worlds.catalog.metrics["orders"]
    house = LeafWarehouse(tmp_path / "leaves", spark)
    day = dt.datetime(2026, 6, 1)
    rows = lambda value, days: pa.table({  # noqa: E731
        "ts": pa.array([day + dt.timedelta(days=k) for k in range(days)], pa.timestamp("us")),
        **{d: ["x"] * days for d in metric.dimensions}, "value": [float(value)] * days})
    assert house.write_window(metric, Window(day, day + dt.timedelta(days=3)), rows(1, 3)) == 3
    assert house.write_window(metric, Window(day + dt.timedelta(days=1), day + dt.timedelta(days=2)),
                              rows(5, 3).slice(1, 1)) == 1
    again = house.write_window(metric, Window(day + dt.timedelta(days=1), day + dt.timedelta(days=2)),
                               rows(5, 3).slice(1, 1))
    assert again == 1
    values = house.frame(metric).orderBy("ts").toPandas()["value"].tolist()
    assert values == [1.0, 5.0, 1.0]
    # only the live write folders remain: the replaced one was removed
    assert_only_live_writes(house, "orders")


def test_a_spark_job_failing_mid_window_leaves_the_previous_leaves(worlds, spark, tmp_path):
    """The window's Spark job fails on an executor: the window keeps its old rows."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType

    from monitor.warehouse.leaves import LeafWarehouse

    metric = worlds.catalog.metrics["orders"]
    house = LeafWarehouse(tmp_path / "leaves", spark)
    day = dt.datetime(2026, 6, 1)
    window = Window(day, day + dt.timedelta(days=4))
    first = pa.table({"ts": pa.array([day + dt.timedelta(days=k) for k in range(4)], pa.timestamp("us")),
                      **{d: ["x"] * 4 for d in metric.dimensions}, "value": [1.0, 2.0, 3.0, 4.0]})
    house.write_window(metric, window, first)
    before = house.manifest("orders")

    @F.udf(DoubleType())
    def explode_on_day_three(ts, value):
        if ts.day == 3:
            raise RuntimeError("executor lost mid-window")
        return value * 10

    frame = spark.createDataFrame(first.to_pandas()).withColumn(
        "value", explode_on_day_three(F.col("ts"), F.col("value")))
    with pytest.raises(Exception, match="executor lost mid-window"):
        house.write_window(metric, window, frame)
    assert house.manifest("orders") == before
    assert house.frame(metric).orderBy("ts").toPandas()["value"].tolist() == [1.0, 2.0, 3.0, 4.0]
    # the next write of the window succeeds and clears what the failed one left behind
    house.write_window(metric, window, first.set_column(first.schema.get_field_index("value"), "value",
                                                        pa.array([7.0, 7.0, 7.0, 7.0])))
    assert house.frame(metric).toPandas()["value"].tolist() == [7.0] * 4
    assert_only_live_writes(house, "orders")


def test_a_killed_driver_mid_window_leaves_the_previous_leaves(worlds, spark, tmp_path):
    """A process killed (SIGKILL) after its Parquet files are written but before it commits."""
    from monitor.warehouse.leaves import MANIFEST, LeafWarehouse

    metric = worlds.catalog.metrics["orders"]
    house = LeafWarehouse(tmp_path / "leaves", spark)
    day = dt.datetime(2026, 6, 1)
    window = Window(day, day + dt.timedelta(days=2))
    rows = pa.table({"ts": pa.array([day, day + dt.timedelta(days=1)], pa.timestamp("us")),
                     **{d: ["x"] * 2 for d in metric.dimensions}, "value": [1.0, 2.0]})
    house.write_window(metric, window, rows)
    before = (tmp_path / "leaves" / "orders" / MANIFEST).read_text()
    # the child does what write_window does up to the commit, then dies without a chance to clean up
    script = textwrap.dedent(f"""
        import os, signal, uuid
        from pathlib import Path
        import pyarrow as pa, pyarrow.parquet as pq
        folder = Path({str(tmp_path / "leaves" / "orders")!r}) / "data" / uuid.uuid4().hex / "day=2026-06-01"
        folder.mkdir(parents=True)
        pq.write_table(pa.table({{"value": [99.0]}}), folder / "part-0.parquet")
        staging = Path({str(tmp_path / "leaves" / "orders")!r}) / ".{MANIFEST}.killed"
        staging.write_text('{{"half": ')
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert done.returncode == -9
    assert (tmp_path / "leaves" / "orders" / MANIFEST).read_text() == before
    assert house.frame(metric).orderBy("ts").toPandas()["value"].tolist() == [1.0, 2.0]
    house.write_window(metric, window, rows)  # the next write removes the orphans
    assert_only_live_writes(house, "orders")
    assert not list((tmp_path / "leaves" / "orders").glob(f".{MANIFEST}.*"))


# -- slices --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["fraud_rate", "orders"])  # a ratio with the screen, a sum
def test_slices_parity_spark_builds_the_same_dense_series(worlds, name):
    from monitor.detect.run_detection import load_slices
    from monitor.warehouse.remote import RemoteSlice

    metric = worlds.catalog.metrics[name]
    axis_d, duck = load_slices(worlds.duck_store, metric, end=worlds.end)
    axis_s, ware = load_slices(worlds.ware_store, metric, end=worlds.end)
    assert len(duck) > 5
    assert axis_s.equals(axis_d)
    assert [s.label for s in ware] == [s.label for s in duck]
    assert [s.screened for s in ware] == [s.screened for s in duck]
    # the slices stay on Spark: the driver holds the arrays of the total and the pairs only
    remote = [isinstance(s, RemoteSlice) for s in ware]
    assert not remote[0] and sum(remote) >= sum(len(s.segment) == 1 for s in duck)
    values, volume = (rows[0:len(ware)] for rows in RemoteSlice.rows(ware))  # one Spark query
    for i, (a, b) in enumerate(zip(ware, duck)):
        np.testing.assert_allclose(values[i], b.values, rtol=1e-12, atol=1e-9, err_msg=a.label)
        np.testing.assert_allclose(volume[i], b.volume, rtol=1e-12, atol=1e-9, err_msg=a.label)
    for i in (1, len(ware) - 1):  # one series read alone, as anything else on the driver would
        np.testing.assert_allclose(ware[i].values, duck[i].values, rtol=1e-12, atol=1e-9)


# -- detection and attribution -------------------------------------------------------------------
def test_detection_parity_same_incidents_and_top_causes(worlds):
    duck, ware = _incidents(worlds.duck_store), _incidents(worlds.ware_store)
    assert len(duck) >= 5
    assert [r["incident_id"] for r in ware] == [r["incident_id"] for r in duck]
    for a, b in zip(ware, duck):
        assert a == b, a["incident_id"]
    assert any(r["top_causes"] for r in duck)  # attribution found causes, on both paths alike


def test_detection_parity_over_spark_connect(worlds, spark, tmp_path):
    """Warehouse mode reached by a Spark Connect URL ([store.options] remote = "sc://..."), as on a
    real cluster: backfill, detect and attribute on the demo world give the DuckDB path's
    incidents. The Connect server runs in this test session's JVM; the client runs in a
    subprocess, as pyspark does not mix a classic and a Connect session in one process."""
    from monitor.store import Store

    require(all(importable(m) for m in ("grpc", "grpc_status", "zstandard")),
            "the Spark Connect client (pip install 'pyspark[connect]')")
    if not connect_server_jar():
        pytest.skip("this pyspark ships no Spark Connect server to test against (pyspark < 4)")
    url = f"sc://127.0.0.1:{spark.conf.get('spark.connect.grpc.binding.port')}"
    code = textwrap.dedent(f"""
        import dataclasses, datetime as dt
        from pathlib import Path
        from monitor.config import load_config
        from monitor.pipeline import backfill_plan, compute, detect_and_attribute, load_project_catalog
        from monitor.warehouse import open_store
        duck = load_config(Path({str(worlds.duck.root)!r}))
        folder = Path({str(tmp_path)!r})
        store_section = {{"leaves": "spark", "path": str(folder / "leaves"), "options": {{"remote": {url!r}}}}}
        config = dataclasses.replace(duck, store_path=folder / "ware.duckdb",
                                     sections={{**duck.sections, "store": store_section}})
        catalog = load_project_catalog(config).select({METRICS!r})
        store = open_store(config)  # no session given: the warehouse opens its own, from the URL
        end = dt.datetime.fromisoformat({worlds.end.isoformat()!r})
        plan = backfill_plan(catalog, end - dt.timedelta(days={DAYS}), end, chunk={DAYS * 24})
        result = compute(config, plan, trigger="backfill", store=store)
        assert not result.failures, result.failures
        assert type(store.warehouse.spark).__module__.startswith("pyspark.sql.connect"), type(store.warehouse.spark)
        cycle = detect_and_attribute(config, catalog, now=end, store=store)
        assert not cycle.detect_failures, cycle.detect_failures
    """)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1500, env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    duck, remote = _incidents(worlds.duck_store), _incidents(Store(tmp_path / "ware.duckdb"))
    assert len(duck) >= 5
    assert [r["incident_id"] for r in remote] == [r["incident_id"] for r in duck]
    for a, b in zip(remote, duck):
        assert a == b, a["incident_id"]


def test_follows_reads_the_same_leads_and_segment_series_from_the_warehouse(worlds):
    """chargeback_rate follows fraud_rate: its leads (fraud_rate's incidents, from the store file)
    and the segment series a lead is judged on (summed on Spark in warehouse mode) are the DuckDB
    path's. (The demo's 63 days give fraud_rate no incident narrower than chargeback_rate's
    total, so the segments are taken from chargeback_rate's own slices: one and two dimensions.)"""
    from monitor.detect.follows import leads_for, segment_series
    from monitor.detect.run_detection import HISTORY, load_slices

    metric = worlds.catalog.metrics["chargeback_rate"]
    assert "fraud_rate" in metric.detect.follows
    axis, slices = load_slices(worlds.duck_store, metric, end=worlds.end)
    since = worlds.end - HISTORY[metric.grain]
    duck, ware = leads_for(worlds.duck_store, metric, since=since), leads_for(worlds.ware_store, metric, since=since)
    assert [(l.segment, l.start) for l in ware] == [(l.segment, l.start) for l in duck]
    segments = [s.segment for s in slices if len(s.segment) == 1][:2] + [s.segment for s in slices
                                                                        if len(s.segment) == 2][:2]
    assert len(segments) == 4
    for segment in [l.segment for l in duck] + segments:
        got, want = segment_series(worlds.ware_store, metric, segment, axis), \
            segment_series(worlds.duck_store, metric, segment, axis)
        assert want[1].sum() > 0, segment
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-9, err_msg=str(segment))


def test_only_shown_series_expectations_are_stored(worlds):
    """The total and the slices with an incident have their band stored, equal to DuckDB's."""
    def bands(store):
        with store.connect(read_only=True) as con:
            return con.execute("SELECT metric, slice, ts, expected, lower, upper FROM expectations"
                               " ORDER BY ALL").df()

    duck, ware = bands(worlds.duck_store), bands(worlds.ware_store)
    shown = {(r["metric"], r["slice"]) for r in _incidents(worlds.ware_store)} | {
        (m, "") for m in METRICS}
    assert set(zip(ware["metric"], ware["slice"])) <= shown
    assert len(ware) < len(duck)
    same = duck.merge(ware[["metric", "slice"]].drop_duplicates(), on=["metric", "slice"])
    assert len(same) == len(ware)
    np.testing.assert_allclose(ware[["expected", "lower", "upper"]].to_numpy(dtype=float),
                               same[["expected", "lower", "upper"]].to_numpy(dtype=float), equal_nan=True)


def test_judging_on_executors_is_detect_batch(spark):
    """Series whose rows are on Spark, judged in chunks by applyInPandas, give detect_batch's own
    results; only the series with an incident bring their rows and band back to the driver, and
    judged again (a second pass) they are judged on the driver from those rows."""
    import types

    import pandas as pd

    from monitor.detect.options import DetectOptions
    from monitor.detect.series import detect_batch
    from monitor.warehouse.judge import ExecutorBatch
    from monitor.warehouse.remote import RemoteSlice, SliceTable

    rng = np.random.default_rng(3)
    values = rng.poisson(50, size=(40, 90)).astype(float)
    values[7, 60:] += 60  # a shift, so one series has an incident and keeps its band
    pos, bucket = np.nonzero(values)
    long = pd.DataFrame({"pos": pos.astype(np.int64), "__bucket": bucket.astype(np.int32),
                         "__num": values[pos, bucket], "__den": values[pos, bucket]})
    table = SliceTable(spark.createDataFrame(long), 90, ratio=False)
    series = [RemoteSlice({"seller": f"s{i:02d}"}, table, i) for i in range(40)]
    metric = types.SimpleNamespace(kind="sum")  # all judge_series reads of the metric
    here = detect_batch(values, exclude=np.zeros(values.shape, bool), options=DetectOptions())
    there = ExecutorBatch(spark, cells_per_task=900).judge_series(  # 10 series a task: 4 tasks
        metric, series, list(range(40)), {}, DetectOptions())
    assert sorted(there) == list(range(40))
    assert [there[i].segments for i in range(40)] == [d.segments for d in here]
    assert [there[i].change_points for i in range(40)] == [d.change_points for d in here]
    assert [there[i].params for i in range(40)] == [d.params for d in here]
    assert here[7].segments and np.array_equal(there[7].expected, here[7].expected, equal_nan=True)
    assert [s.held for s in series] == [bool(d.segments) for d in here]
    assert np.array_equal(series[7].values, values[7])
    assert all(there[i].expected is None for i in range(40) if not here[i].segments)
    mask = np.zeros(90, bool)
    mask[60:70] = True  # a closed incident kept out of the baseline
    again = ExecutorBatch(spark).judge_series(metric, series, [7], {series[7].label: mask}, DetectOptions())
    alone = detect_batch(values[7:8], exclude=mask[None, :], options=DetectOptions())[0]
    assert again[7].segments == alone.segments and np.array_equal(again[7].expected, alone.expected, equal_nan=True)


def test_default_store_needs_no_spark(tmp_path):
    """[store] leaves defaults to the DuckDB file, and choosing it imports no pyspark."""
    code = textwrap.dedent(f"""
        import sys
        import monitor.cli, monitor.pipeline, monitor.detect.run_detection, monitor.attribute.incident_attribution
        from monitor.config import load_config
        from monitor.warehouse import open_store
        from pathlib import Path
        Path({str(tmp_path)!r}, "monitor.toml").write_text("[project]\\nname = 'x'\\n")
        store = open_store(load_config({str(tmp_path)!r}))
        assert type(store).__name__ == "Store", store
        assert "pyspark" not in sys.modules
    """)
    subprocess.run([sys.executable, "-c", code], check=True)


def test_store_settings_are_checked(tmp_path):
    from monitor.config import load_config
    from monitor.errors import ConfigError
    from monitor.warehouse import store_settings

    for body, message in [('[store]\nleaves = "s3"\n', "leaves"), ('[store]\nbucket = "x"\n', "unknown key"),
                          ('[store]\nleaves = "spark"\n[detect]\nengine = "duckdb"\n', "detection runs where")]:
        (tmp_path / "monitor.toml").write_text(body)
        with pytest.raises(ConfigError, match=message):
            store_settings(load_config(tmp_path))


def test_spark_screen_pools_as_the_duckdb_screen(spark):
    """The Spark screen's pooled part (column sums, how far pairs stray) equals screen_pairs':
    without it a seller x channel pair was judged on its own history alone, and at 200k
    sellers Spark paged another set of pairs than DuckDB."""
    import duckdb

    from monitor.detect import screen
    from monitor.warehouse.slices import _pooled

    rng = np.random.default_rng(5)
    width, rows, n_buckets = 3, 400, 40
    code = np.repeat(np.arange(rows * width), n_buckets)
    bucket = np.tile(np.arange(n_buckets), rows * width)
    d = rng.poisson(50.0 / (1 + code // width / 20) * (1 + code % width)).astype(float)
    # pairs whose rates stray from seller x channel: tau2 well above its floor
    n = rng.poisson(d * 0.02 * rng.gamma(4.0, 0.25, rows * width)[code]).astype(float)
    frame = pd.DataFrame({"code": code, "__bucket": bucket, "n": n, "d": d})
    con = duckdb.connect()
    con.execute("CREATE TEMP TABLE screen_long AS SELECT * FROM frame")
    want_columns, want_tau2 = screen._column_sums(con, width, n_buckets), screen._tau2(con, width)
    assert want_tau2 > 2 * screen.TAU2_MIN
    columns, tau2 = _pooled(spark.createDataFrame(frame), width, n_buckets)
    np.testing.assert_allclose(columns[0], want_columns[0], rtol=1e-12)
    np.testing.assert_allclose(columns[1], want_columns[1], rtol=1e-12)
    assert tau2 == pytest.approx(want_tau2, rel=1e-9)
