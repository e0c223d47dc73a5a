"""The Spark engine: the demo metrics give the same leaf rows on Spark as on DuckDB.

Spark runs in local mode (local[2], 2 shuffle partitions) with one SparkSession for the
whole test session; the same JVM also serves Spark Connect on a free loopback port, so the
``remote`` path is tested without a second JVM. Run these alone with ``pytest -m spark``.

Without pyspark or Java these tests skip with the reason; under CI (``CI`` set, or
``MONITOR_REQUIRE_SPARK=1``) a missing install is a failure instead, so a forgotten
``scripts/spark-deps.sh`` step cannot turn the suite green by skipping it.
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

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from monitor.catalog import load_catalog, parse_metric
from monitor.config import SourceConfig
from monitor.engine import DuckDBEngine, Window
from monitor.engine.spark_engine import SparkEngine, export_parquet
from monitor.errors import ConfigError, MetricRunError
from spark_session import connect_server_jar, free_port, importable, require, require_spark

pytestmark = pytest.mark.spark
require_spark()

ROOT = Path(__file__).resolve().parents[1]
REPO_METRICS = ROOT / "metrics"

DEMO_START = dt.datetime(2026, 6, 1)
DEMO_DAYS = 30
CATALOG = load_catalog(REPO_METRICS)
DEMO_METRICS = sorted(CATALOG.metrics)


@dataclasses.dataclass
class Demo:
    db: Path
    views: dict[str, Path]
    window: Window


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> Demo:
    """The demo world (30 days, small scale) in DuckDB and exported to Parquet."""
    from monitor.demo.world import build_world

    folder = tmp_path_factory.mktemp("demo")
    world = build_world(folder / "source.duckdb", seed=7, days=DEMO_DAYS, start=DEMO_START.date(), scale=0.1)
    assert world["rows"]["orders"] > 20_000
    views = export_parquet(folder / "source.duckdb", folder / "parquet")
    return Demo(folder / "source.duckdb", views, Window(DEMO_START, DEMO_START + dt.timedelta(days=DEMO_DAYS)))


@pytest.fixture(scope="session")
def engines(spark, demo):
    with SparkEngine(SourceConfig(None, demo.views, "spark", {}), session=spark) as on_spark, \
            DuckDBEngine(SourceConfig(demo.db)) as on_duckdb:
        yield on_spark, on_duckdb


def assert_same_leaves(metric, left: pa.Table, right: pa.Table) -> None:
    """Same leaf rows: keys equal after sorting, measures equal up to float rounding."""
    keys = ["ts", *metric.keys]  # a distribution's bucket column is a key too
    order = [(k, "ascending") for k in keys]
    assert left.column_names == right.column_names == [*keys, *metric.measures]
    assert left.schema.equals(right.schema), (left.schema, right.schema)
    assert left.num_rows == right.num_rows, (left.num_rows, right.num_rows)
    left, right = left.sort_by(order), right.sort_by(order)
    assert left.select(keys).equals(right.select(keys))
    for m in metric.measures:
        np.testing.assert_allclose(left.column(m).to_numpy(), right.column(m).to_numpy(), rtol=1e-9, atol=1e-9)


def metric_from(sql_body: str, *, name: str = "probe", kind: str = "sum", grain: str = "day",
                dimensions: str = "[country]", path: Path = Path("metrics/probe.sql")):
    text = f"""/* ---
name: {name}
kind: {kind}
grain: {grain}
dimensions: {dimensions}
schedule: "0 6 * * *"
--- */
{sql_body}
"""
    metric, problems = parse_metric(text, path)
    assert not problems, problems
    return metric


# -- the same numbers on both engines ------------------------------------------------------------
def test_demo_catalog_is_there():
    assert not CATALOG.problems, CATALOG.problems
    assert len(DEMO_METRICS) >= 5


@pytest.mark.parametrize("name", DEMO_METRICS)
def test_demo_metric_same_leaf_rows_on_spark_and_duckdb(engines, demo, name):
    on_spark, on_duckdb = engines
    metric = CATALOG.metrics[name]
    assert on_spark.dry_run(metric) == []
    # Data lies on both sides of the window, so its bounds are tested too.
    window = Window(demo.window.start + dt.timedelta(days=1), demo.window.end - dt.timedelta(hours=1))
    expected = on_duckdb.run(metric, window)
    got = on_spark.run(metric, window)
    assert expected.num_rows > 0
    assert_same_leaves(metric, got, expected)
    assert got.schema.field("ts").type == pa.timestamp("us")  # naive, like DuckDB's


def test_window_is_half_open_and_bound_not_pasted(spark, tmp_path):
    """Rows at start count, rows at end don't; the SQL carries :start/:end, never the values."""
    at = dt.datetime(2026, 3, 2)
    rows = [at - dt.timedelta(microseconds=1), at, at + dt.timedelta(hours=23, minutes=59), at + dt.timedelta(days=1)]
    path = tmp_path / "orders.parquet"
    with duckdb.connect() as con:
        con.execute("CREATE TABLE orders (created_at TIMESTAMP, country VARCHAR)")
        con.executemany("INSERT INTO orders VALUES (?, 'US')", [[r] for r in rows])
        con.execute(f"COPY orders TO '{path}' (FORMAT parquet)")
    metric = metric_from("SELECT date_trunc('day', created_at) AS ts, country, count(*) AS value\n"
                         "FROM orders WHERE created_at >= $start AND created_at < $end GROUP BY ALL")
    with SparkEngine(SourceConfig(None, {"orders": path}, "spark", {}), session=spark) as engine:
        sql = engine.spark_sql(metric)
        result = engine.run(metric, Window(at, at + dt.timedelta(days=1)))
    assert "CAST(:start AS TIMESTAMP_NTZ)" in sql and "CAST(:end AS TIMESTAMP_NTZ)" in sql
    assert "2026" not in sql
    assert result.to_pylist() == [{"ts": at, "country": "US", "value": 2.0}]


# -- clear errors, found by `monitor check` ------------------------------------------------------
UNTRANSLATABLE = """SELECT date_trunc('day', created_at) AS ts, country,
       sum(try(amount)) AS value
FROM orders
WHERE created_at >= $start AND created_at < $end
GROUP BY ALL"""


def test_untranslatable_construct_is_named_with_metric_and_line(engines):
    on_spark, _ = engines
    metric = metric_from(UNTRANSLATABLE, name="try_amount", path=Path("metrics/try_amount.sql"))
    problems = on_spark.dry_run(metric)
    assert len(problems) == 1
    assert problems[0].startswith("try_amount (metrics/try_amount.sql:8): cannot run on Spark")
    assert "TRY" in problems[0]
    with pytest.raises(MetricRunError, match="try_amount .*TRY"):
        on_spark.run(metric, Window(DEMO_START, DEMO_START + dt.timedelta(days=1)))


@pytest.mark.parametrize("sql, needle, stage", [
    ("SELECT date_trunc('day', created_at) AS ts, country, sum(list_aggregate([amount], 'sum')) AS value\n"
     "FROM orders WHERE created_at >= $start AND created_at < $end GROUP BY ALL",
     "list_aggregate", "8): Spark rejects the translated query"),
    ("SELECT date_trunc('day', created_at) AS ts, country, sum(amount_usd) AS value\n"
     "FROM orders WHERE created_at >= $start AND created_at < $end GROUP BY ALL",
     "amount_usd", "8): Spark rejects the translated query"),
    ("SELECT date_trunc('day', o.created_at) AS ts, o.country, count(*) AS value\n"
     "FROM orders o ASOF JOIN signups s ON o.country = s.country AND o.created_at >= s.created_at\n"
     "WHERE o.created_at >= $start AND o.created_at < $end GROUP BY ALL",
     "ASOF JOIN is DuckDB-only", "9): cannot run on Spark"),  # the line of the join
], ids=["duckdb-only-function", "missing-column", "asof-join"])
def test_errors_name_the_construct(engines, sql, needle, stage):
    """What SQLGlot passes through but Spark can't run is caught by the dry run, named."""
    on_spark, _ = engines
    problems = on_spark.dry_run(metric_from(sql))
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"probe (metrics/probe.sql:{stage}")
    assert needle.lower() in problems[0].lower()


def test_dry_run_reports_wrong_columns(engines):
    on_spark, _ = engines
    metric = metric_from("SELECT date_trunc('day', created_at) AS ts, count(*) AS value\n"
                         "FROM orders WHERE created_at >= $start AND created_at < $end GROUP BY ALL")
    problems = on_spark.dry_run(metric)
    assert problems and "missing column(s) country" in problems[0]


def test_run_goes_through_check_result(engines):
    on_spark, _ = engines
    metric = metric_from("SELECT date_trunc('hour', created_at) AS ts, country, count(*) AS value\n"
                         "FROM orders WHERE created_at >= $start AND created_at < $end GROUP BY ALL")
    with pytest.raises(MetricRunError, match="probe returned bad rows .*not aligned to the day grain"):
        on_spark.run(metric, Window(DEMO_START, DEMO_START + dt.timedelta(days=2)))


FAILED_ON_SPARK = r"probe failed on Spark for \[2026-06-01 00:00, 2026-06-02 00:00\): .*CAST"


def test_runtime_failure_names_metric_and_window(spark, demo):
    """A query that fails while running (here an invalid cast under ANSI mode, set through options.conf)."""
    metric = metric_from("SELECT date_trunc('day', created_at) AS ts, country, sum(CAST(country AS INT)) AS value\n"
                         "FROM orders WHERE created_at >= $start AND created_at < $end GROUP BY ALL")
    options = {"conf": {"spark.sql.ansi.enabled": True}}  # Spark 4's default; Spark 3.5's is false
    with SparkEngine(SourceConfig(None, demo.views, "spark", options), session=spark) as engine, \
            pytest.raises(MetricRunError, match=FAILED_ON_SPARK):
        engine.run(metric, Window(DEMO_START, DEMO_START + dt.timedelta(days=1)))


def _spark_project(tmp_path: Path, demo: Demo) -> Path:
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    for metric in CATALOG.metrics.values():
        (metrics / metric.path.name).write_text(metric.path.read_text())
    views = ", ".join(f'{name} = "{path}"' for name, path in demo.views.items())
    (tmp_path / "monitor.toml").write_text(textwrap.dedent(f"""\
        [project]
        name = "spark-check"
        [source]
        engine = "spark"
        views = {{ {views} }}
        [source.options]
        master = "local[2]"
        conf = {{ "spark.sql.shuffle.partitions" = 2 }}
    """))
    return tmp_path / "monitor.toml"


def test_monitor_check_on_a_spark_source(spark, demo, tmp_path, monkeypatch):
    """`monitor check` dry-runs every metric on Spark and names the one that can't be translated."""
    from click.testing import CliRunner

    import monitor.engine as engine_pkg
    from monitor.cli import cli

    monkeypatch.setitem(engine_pkg.ENGINES, "spark", SparkEngine)  # a no-op once registered
    header = '/* ---\nname: try_amount\nkind: sum\ngrain: day\ndimensions: [country]\nschedule: "0 6 * * *"\n--- */\n'
    config = _spark_project(tmp_path, demo)
    (tmp_path / "metrics" / "try_amount.sql").write_text(header + UNTRANSLATABLE + "\n")
    result = CliRunner().invoke(cli, ["--config", str(config), "check"])
    assert result.exit_code == 1, result.output
    assert f"{len(DEMO_METRICS) + 1} metric file(s), {len(DEMO_METRICS) + 1} valid." in result.output
    # Exactly one problem: the demo metrics all pass Spark's analysis, try() can't be translated.
    assert "1 problem in the metric catalog" in result.output, result.output
    assert "try_amount (" in result.output and "cannot run on Spark" in result.output and "TRY" in result.output
    assert spark.sparkContext._jsc is not None  # the CLI's engine left the shared context running


# -- configuration ---------------------------------------------------------------------------------
@pytest.mark.parametrize("options, database, message", [
    ({"masterr": "local[2]"}, None, r"Unknown key\(s\) \['masterr'\] in \[source.options\]"),
    ({"master": "local[2]", "remote": "sc://h:15002"}, None, "both master and remote"),
    ({}, Path("source.duckdb"), "DuckDB file, which Spark cannot read"),
    ({"tables": {"orders": {"path": "x", "table": "y"}}}, None, "either table"),
], ids=["unknown-key", "master-and-remote", "duckdb-database", "table-and-path"])
def test_bad_config_is_one_clear_error(options, database, message):
    with pytest.raises(ConfigError, match=message):
        SparkEngine(SourceConfig(database, {}, "spark", options))


def test_unreachable_spark_connect_fails_fast():
    """The Connect client would retry for minutes; a closed port is one clear error at once."""
    metric = CATALOG.metrics["orders"]
    engine = SparkEngine(SourceConfig(None, {}, "spark", {"remote": f"sc://127.0.0.1:{free_port()}",
                                                          "tables": {"orders": "db.orders"}}))
    with pytest.raises(ConfigError, match=r"Cannot reach Spark Connect at 127\.0\.0\.1:\d+"):
        engine.dry_run(metric)
    with pytest.raises(ConfigError, match="not a Spark Connect URL"):
        SparkEngine(SourceConfig(None, {}, "spark", {"remote": "http://h:15002", "tables": {"orders": "db.orders"}}))


def test_missing_parquet_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="orders: .*does not exist"):
        SparkEngine(SourceConfig(None, {"orders": tmp_path / "nope.parquet"}, "spark", {"master": "local[1]"}))


def test_catalog_tables_and_lake_paths(spark, engines, demo):
    """options.tables: a catalog table (here a global temp view) and a path with a format."""
    spark.read.parquet(str(demo.views["orders"])).createOrReplaceGlobalTempView("lake_orders")
    metric = CATALOG.metrics["fraud_rate"]
    window = Window(DEMO_START, DEMO_START + dt.timedelta(days=3))
    expected = engines[1].run(metric, window)
    for tables in ({"orders": "global_temp.lake_orders"},
                   {"orders": {"path": str(demo.views["orders"]), "format": "parquet"}}):
        with SparkEngine(SourceConfig(None, {}, "spark", {"tables": tables}), session=spark) as engine:
            assert_same_leaves(metric, engine.run(metric, window), expected)


def test_spark_connect_remote(spark, demo, tmp_path):
    """options.remote = "sc://..." runs the metric through Spark Connect (in a subprocess:
    pyspark does not mix classic and Connect sessions in one process)."""
    require(all(importable(m) for m in ("grpc", "grpc_status", "zstandard")),
             "the Spark Connect client (pip install 'pyspark[connect]')")
    if not connect_server_jar():
        pytest.skip("this pyspark ships no Spark Connect server to test against (pyspark < 4)")
    url = f"sc://127.0.0.1:{spark.conf.get('spark.connect.grpc.binding.port')}"
    metric = CATALOG.metrics["payment_decline_rate"]
    window = Window(DEMO_START + dt.timedelta(days=5), DEMO_START + dt.timedelta(days=7))
    with DuckDBEngine(SourceConfig(demo.db)) as on_duckdb:
        expected = on_duckdb.run(metric, window)
    out = tmp_path / "connect.arrow"
    views_json = json.dumps({k: str(v) for k, v in demo.views.items()})
    code = textwrap.dedent(f"""
        import datetime as dt, json, sys
        from pathlib import Path
        import pyarrow as pa
        from monitor.catalog import load_catalog
        from monitor.config import SourceConfig
        from monitor.engine import Window
        from monitor.engine.spark_engine import SparkEngine
        metric = load_catalog(Path({str(REPO_METRICS)!r})).metrics[{metric.name!r}]
        views = {{k: Path(v) for k, v in json.loads({views_json!r}).items()}}
        with SparkEngine(SourceConfig(None, views, "spark", {{"remote": {url!r}}})) as engine:
            assert engine.dry_run(metric) == [], engine.dry_run(metric)
            table = engine.run(metric, Window(dt.datetime.fromisoformat({window.start.isoformat()!r}),
                                              dt.datetime.fromisoformat({window.end.isoformat()!r})))
            assert type(engine.session()).__module__.startswith("pyspark.sql.connect")
        with pa.OSFile({str(out)!r}, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    got = pa.ipc.open_file(str(out)).read_all()
    assert_same_leaves(metric, got, expected)


def test_default_install_does_not_need_spark(tmp_path):
    """Importing the engine pulls in neither pyspark nor SQLGlot; without pyspark the error says what to install."""
    parquet = tmp_path / "orders.parquet"
    parquet.touch()
    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        import monitor.engine.spark_engine as se
        from monitor.config import SourceConfig
        from monitor.errors import ConfigError
        assert "pyspark" not in sys.modules and "sqlglot" not in sys.modules, "imported eagerly"
        sys.modules["pyspark"] = None  # as if the spark extra were not installed
        engine = se.SparkEngine(SourceConfig(None, {{"orders": Path({str(parquet)!r})}}, "spark", {{}}))
        try:
            engine.session()
        except ConfigError as exc:
            print(exc)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "needs pyspark" in done.stdout and "pip install 'monitor[spark]'" in done.stdout
