"""Warehouse mode with a Spark source: the query result goes from Spark to the warehouse without
passing through the driver, checked on Spark with check_result's rules and messages.

Uses the shared local SparkSession (conftest's `spark`); skips without pyspark or Java, except
under CI.
"""
from __future__ import annotations

import datetime as dt
import os
import sys
import textwrap
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from monitor.engine import Window

from spark_session import require_spark

pytestmark = pytest.mark.spark

require_spark()

START = dt.datetime(2026, 3, 1)
DAYS = 6
# The Python workers of local mode run this interpreter (a mean's rules are checked there);
# set before the shared SparkContext starts.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
RATE = """/* ---
name: decline_rate
kind: ratio
grain: day
bounded: true
dimensions: [country, method]
schedule: "0 6 * * *"
--- */
SELECT date_trunc('day', created_at) AS ts, country, method,
       sum(CASE WHEN declined THEN 1 ELSE 0 END) AS numerator, count(*) AS denominator
FROM payments WHERE created_at >= $start AND created_at < $end GROUP BY ALL
"""


def _project(folder: Path, *, broken_day: int | None = None) -> Path:
    """A project reading payments.parquet on Spark into the warehouse. `broken_day`: that day's
    rows have a NULL created_at hour shifted off the grain (a bad query result)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics").mkdir(exist_ok=True)
    body = RATE
    if broken_day is not None:  # off the grain on one day: check_result's own message is expected
        body = body.replace("date_trunc('day', created_at) AS ts",
                            f"CASE WHEN day(created_at) = {START.day + broken_day} THEN created_at"
                            " ELSE date_trunc('day', created_at) END AS ts")
    (folder / "metrics" / "decline_rate.sql").write_text(body)
    parquet = folder / "payments.parquet"
    if not parquet.exists():
        with duckdb.connect() as con:
            # a NULL method and a real '(null)' text: both kept apart, as the DuckDB engine stores them
            con.execute(f"""COPY (SELECT TIMESTAMP '{START:%Y-%m-%d}' + INTERVAL (i % {DAYS * 24}) HOUR AS created_at,
                                ['US', 'GB', 'DE'][1 + i % 3] AS country,
                                CASE i % 5 WHEN 0 THEN NULL WHEN 1 THEN '(null)' ELSE ['card', 'paypal'][1 + i % 2] END
                                  AS method,
                                (hash(i) % 10) = 0 AS declined
                            FROM range(20000) t(i)) TO '{parquet}' (FORMAT parquet)""")
    (folder / "monitor.toml").write_text(textwrap.dedent(f"""\
        [project]
        name = "incoming"
        [source]
        engine = "spark"
        views = {{ payments = "{parquet}" }}
        [source.options]
        master = "local[2]"
        [store]
        leaves = "spark"
        path = "leaves"
    """))
    return folder / "monitor.toml"


def _load(path: Path):
    from monitor.config import load_config
    from monitor.pipeline import load_project_catalog

    config = load_config(path)
    return config, load_project_catalog(config).metrics["decline_rate"]


def test_spark_source_rows_go_to_the_warehouse_without_the_driver(spark, tmp_path, monkeypatch):
    from monitor.config import SourceConfig
    from monitor.engine.spark_engine import SparkEngine
    from monitor.pipeline import compute
    from monitor.warehouse import open_store

    config, metric = _load(_project(tmp_path / "p"))
    window = Window(START, START + dt.timedelta(days=DAYS))
    with SparkEngine(SourceConfig(None, dict(config.source.views), "spark", {}), session=spark) as engine:
        want = engine.run(metric, window)  # the Arrow path: check_result on the driver
    collected = []
    real_run = SparkEngine.run
    monkeypatch.setattr(SparkEngine, "run", lambda self, *a, **k: collected.append(a) or real_run(self, *a, **k))
    store = open_store(config, session=spark)
    result = compute(config, [(metric, window)], trigger="backfill", store=store)
    assert not result.failures, result.failures
    assert collected == []  # no window's rows came to the driver as Arrow
    got = pa.Table.from_pandas(store.read_leaves(metric), preserve_index=False)
    keys = ["ts", *metric.dimensions]
    got, want = got.sort_by([(k, "ascending") for k in keys]), want.sort_by([(k, "ascending") for k in keys])
    assert got.num_rows == want.num_rows == result.rows
    assert got.select(keys).to_pylist() == want.select(keys).to_pylist()
    assert {"(null)", "\\(null)"} <= set(got.column("method").to_pylist())
    for m in metric.measures:
        assert got.column(m).to_pylist() == want.column(m).to_pylist()


def test_bad_rows_fail_the_window_with_check_results_message_and_keep_the_old_leaves(spark, tmp_path):
    from monitor.pipeline import compute
    from monitor.warehouse import open_store

    window = Window(START, START + dt.timedelta(days=DAYS))
    config, metric = _load(_project(tmp_path / "p"))
    store = open_store(config, session=spark)
    assert not compute(config, [(metric, window)], trigger="backfill", store=store).failures
    before = store.read_leaves(metric)
    config, metric = _load(_project(tmp_path / "p", broken_day=2))
    store = open_store(config, session=spark)
    result = compute(config, [(metric, window)], trigger="backfill", store=store)
    assert len(result.failures) == 1
    assert "decline_rate returned bad rows for" in result.failures[0][2]
    assert "not aligned to the day grain" in result.failures[0][2]
    assert store.read_leaves(metric).equals(before)


def test_spark_connect_source_and_warehouse_in_one_process(spark, tmp_path):
    """[source] and the warehouse on one Spark Connect URL: two Connect sessions in the monitor
    process (the source engine's and the warehouse's). The window is written whole, with the rows
    the classic session gives. Before monitor.warehouse.checkpoint the warehouse's checkpoint
    was bound to the other session and the write failed (DATAFRAME_NOT_FOUND); before the
    warehouse closed its Connect session at exit the client hung there. The client runs in
    a subprocess: pyspark does not mix a classic and a Connect session in one process."""
    import os
    import subprocess
    import sys

    from monitor.config import SourceConfig
    from monitor.engine.spark_engine import SparkEngine
    from monitor.warehouse import open_store
    from spark_session import connect_server_jar, importable, require

    require(all(importable(m) for m in ("grpc", "grpc_status", "zstandard")),
            "the Spark Connect client (pip install 'pyspark[connect]')")
    if not connect_server_jar():
        pytest.skip("this pyspark ships no Spark Connect server to test against (pyspark < 4)")
    url = f"sc://127.0.0.1:{spark.conf.get('spark.connect.grpc.binding.port')}"
    toml = _project(tmp_path / "p")
    toml.write_text(toml.read_text().replace('master = "local[2]"', f'remote = "{url}"'))
    window = Window(START, START + dt.timedelta(days=DAYS))
    code = textwrap.dedent(f"""
        import datetime as dt, os, sys, traceback
        from pathlib import Path
        from monitor.config import load_config
        from monitor.engine import Window
        from monitor.pipeline import compute, load_project_catalog
        from monitor.warehouse import open_store
        try:
            config = load_config(Path({str(toml)!r}))
            metric = load_project_catalog(config).metrics["decline_rate"]
            store = open_store(config)
            window = Window(dt.datetime.fromisoformat({window.start.isoformat()!r}),
                            dt.datetime.fromisoformat({window.end.isoformat()!r}))
            result = compute(config, [(metric, window)], trigger="backfill", store=store)
            assert not result.failures, result.failures
            assert type(store.warehouse.spark).__module__.startswith("pyspark.sql.connect")
            print(result.rows, flush=True)
        except BaseException:
            traceback.print_exc()
            sys.stderr.flush()
            os._exit(1)
        # a normal exit: with two Connect sessions it used to hang closing a gRPC channel during
        # finalization (docs/spark.md); hanging now dumps the stacks and fails within a minute
        import faulthandler
        faulthandler.dump_traceback_later(60, exit=True)
    """)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    config, metric = _load(toml)
    with SparkEngine(SourceConfig(None, dict(config.source.views), "spark", {}), session=spark) as engine:
        want = engine.run(metric, window)
    got = pa.Table.from_pandas(open_store(config, session=spark).read_leaves(metric), preserve_index=False)
    keys = ["ts", *metric.dimensions]
    got, want = got.sort_by([(k, "ascending") for k in keys]), want.sort_by([(k, "ascending") for k in keys])
    assert int(done.stdout.split()[-1]) == got.num_rows == want.num_rows > 0
    assert got.select(keys).to_pylist() == want.select(keys).to_pylist()
    for m in metric.measures:
        assert got.column(m).to_pylist() == want.column(m).to_pylist()


MEAN = """/* ---
name: hour_mean
kind: mean
grain: day
dimensions: [country, method]
schedule: "0 6 * * *"
--- */
SELECT date_trunc('day', created_at) AS ts, country, method, sum(hour(created_at)) AS value_sum,
       {count} AS value_count, sum(hour(created_at) * hour(created_at)) AS value_sq_sum
FROM payments WHERE created_at >= $start AND created_at < $end GROUP BY ALL
"""


@pytest.mark.parametrize("count", ["count(*)", "CASE WHEN country = 'US' THEN -count(*) ELSE count(*) END"])
def test_a_mean_from_a_spark_source_is_checked_on_spark_with_its_kind_rules(spark, tmp_path, monkeypatch, count):
    """A mean metric's rows go from the Spark source to the warehouse without the driver too; its
    own rules (a count is not negative) are judged on the executors and a window breaking them
    fails with engine.run's message, which counts every row."""
    from monitor.config import SourceConfig, load_config
    from monitor.engine.spark_engine import SparkEngine
    from monitor.errors import MetricRunError
    from monitor.pipeline import compute, load_project_catalog
    from monitor.warehouse import open_store

    toml = _project(tmp_path / "p")
    (tmp_path / "p" / "metrics" / "decline_rate.sql").unlink()
    (tmp_path / "p" / "metrics" / "hour_mean.sql").write_text(MEAN.format(count=count))
    config = load_config(toml)
    metric = load_project_catalog(config).metrics["hour_mean"]
    window = Window(START, START + dt.timedelta(days=DAYS))
    collected = []
    real_run = SparkEngine.run
    with SparkEngine(SourceConfig(None, dict(config.source.views), "spark", {}), session=spark) as engine:
        if count == "count(*)":
            want = engine.run(metric, window)
        else:
            with pytest.raises(MetricRunError) as failed:
                engine.run(metric, window)
    monkeypatch.setattr(SparkEngine, "run", lambda self, *a, **k: collected.append(a) or real_run(self, *a, **k))
    store = open_store(config, session=spark)
    result = compute(config, [(metric, window)], trigger="backfill", store=store)
    assert collected == []  # no window's rows came to the driver as Arrow
    if count != "count(*)":
        assert len(result.failures) == 1 and not store.has_leaves("hour_mean")
        assert "negative value_count in 24 row(s)" in str(failed.value)  # US x 4 methods x 6 days
        assert str(failed.value) in result.failures[0][2]
        return
    assert not result.failures, result.failures
    got = pa.Table.from_pandas(store.read_leaves(metric), preserve_index=False)
    keys = ["ts", *metric.dimensions]
    got, want = got.sort_by([(k, "ascending") for k in keys]), want.sort_by([(k, "ascending") for k in keys])
    assert got.num_rows == want.num_rows == result.rows > 0
    assert got.select(keys).to_pylist() == want.select(keys).to_pylist()
    for m in metric.measures:
        assert got.column(m).to_pylist() == want.column(m).to_pylist()
