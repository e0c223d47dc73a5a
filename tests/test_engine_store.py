"""Engine checks and store writes, on real DuckDB files."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from monitor.catalog import load_catalog, parse_metric
from monitor.config import SourceConfig
from monitor.engine import DuckDBEngine, Window, make_engine
from monitor.errors import MetricRunError
from monitor.pipeline import backfill_plan, compute, due_windows
from monitor.store import Store
from tests.conftest import FRAUD_RATE

D = dt.datetime


def metric_from(text: str, name: str = "m"):
    metric, problems = parse_metric(text, Path(f"{name}.sql"))
    assert not problems, problems
    return metric


def leaf_rows(store: Store, table: str) -> list[tuple]:
    with store.connect(read_only=True) as con:
        return con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()


def test_run_binds_window_and_returns_checked_leaves(project):
    metric = load_catalog(project.metrics_dir).metrics["fraud_rate"]
    with make_engine(project.source) as engine:
        rows = engine.run(metric, Window(D(2026, 3, 2), D(2026, 3, 4)))
    assert rows.column_names == ["ts", "country", "channel", "numerator", "denominator"]
    days = {t.as_py() for t in rows.column("ts")}
    assert days == {D(2026, 3, 2), D(2026, 3, 3)}
    with duckdb.connect(str(project.source.database), read_only=True) as con:
        expected = con.execute("SELECT count(*) FROM orders WHERE created_at >= '2026-03-02' AND created_at < '2026-03-04'").fetchone()[0]
    assert sum(rows.column("denominator").to_pylist()) == expected > 0
    assert rows.schema.field("numerator").type == pa.float64()


@pytest.mark.parametrize(
    "sql_edit, message",
    [
        ("date_trunc('day', created_at) AS ts", "date_trunc('hour', created_at) AS ts", ),
        ("created_at >= $start", "created_at >= $start - INTERVAL 3 DAY"),
        ("count(*) AS denominator", "-count(*) AS denominator"),
        ("count(*) AS denominator", "count(*) FILTER (WHERE is_fraud) - 1 AS denominator"),
        ("country, channel,\n", "country,\n"),
        ("count(*) AS denominator", "'many' AS denominator"),
    ],
    ids=["misaligned", "outside-window", "negative-denominator", "unbounded", "missing-dim", "non-numeric"],
)
def test_bad_results_name_metric_window_and_sql(project, sql_edit, message):
    old, new = sql_edit, message
    assert old in FRAUD_RATE
    metric = metric_from(FRAUD_RATE.replace(old, new, 1), "fraud_rate")
    window = Window(D(2026, 3, 5), D(2026, 3, 6))
    with DuckDBEngine(project.source) as engine, pytest.raises(MetricRunError) as err:
        engine.run(metric, window)
    assert "fraud_rate" in str(err.value) and "2026-03-05" in str(err.value)
    assert err.value.evidence == metric.sql


def test_dry_run_reports_missing_and_mistyped_columns(project):
    metric = metric_from(FRAUD_RATE.replace("count(*) AS denominator", "'x' AS denominator").replace("country, channel,\n", "country,\n", 1))
    with DuckDBEngine(project.source) as engine:
        problems = engine.dry_run(metric)
    assert any("missing column(s) channel" in p for p in problems)
    assert any("measure denominator is string" in p for p in problems)
    broken = metric_from(FRAUD_RATE.replace("FROM orders", "FROM no_such_table"))
    with DuckDBEngine(project.source) as engine:
        assert "no_such_table" in engine.dry_run(broken)[0]


def test_views_over_parquet_and_csv(tmp_path):
    con = duckdb.connect()
    con.execute("COPY (SELECT TIMESTAMP '2026-01-01 10:00' AS created_at, 'US' AS country, 'web' AS channel, true AS is_fraud)"
                f" TO '{tmp_path / 'o.parquet'}' (FORMAT parquet)")
    source = SourceConfig(database=None, views={"orders": tmp_path / "o.parquet"})
    metric = metric_from(FRAUD_RATE)
    with DuckDBEngine(source) as engine:
        rows = engine.run(metric, Window(D(2026, 1, 1), D(2026, 1, 2)))
    assert rows.num_rows == 1 and rows.column("numerator").to_pylist() == [1.0]


def test_rerun_is_idempotent(project):
    store = Store(project.store_path)
    catalog = load_catalog(project.metrics_dir)
    plan = backfill_plan(catalog.select(None), D(2026, 3, 1), D(2026, 3, 11))
    first = compute(project, plan, trigger="backfill", store=store)
    before = leaf_rows(store, "leaves__fraud_rate")
    second = compute(project, plan, trigger="backfill", store=store)
    assert first.failures == [] and second.failures == []
    assert leaf_rows(store, "leaves__fraud_rate") == before
    assert len(before) == 10 * 8  # 10 days x 4 countries x 2 channels


def test_failing_metric_leaves_store_as_it_was_and_others_still_run(project):
    store = Store(project.store_path)
    catalog = load_catalog(project.metrics_dir)
    window_plan = backfill_plan(catalog.select(None), D(2026, 3, 1), D(2026, 3, 5))
    compute(project, window_plan, trigger="backfill", store=store)
    good_before = leaf_rows(store, "leaves__fraud_rate")
    # The same metric now raises inside DuckDB part-way through its rows.
    exploding = metric_from(FRAUD_RATE.replace(
        "count(*) AS denominator", "count(*) + CASE WHEN any_value(country) = 'DE' THEN error('boom')::INT ELSE 0 END AS denominator"), "fraud_rate")
    plan = [(exploding, w) for _, w in window_plan[:1]] + [(catalog.metrics["order_count"], w) for _, w in window_plan[:1]]
    result = compute(project, plan, trigger="run", store=store)
    assert [f[0] for f in result.failures] == ["fraud_rate"] and "boom" in result.failures[0][2]
    assert result.windows_ok == 1  # order_count still computed
    assert leaf_rows(store, "leaves__fraud_rate") == good_before
    runs = store.runs("fraud_rate")
    assert runs.iloc[0]["status"] == "failed" and "boom" in runs.iloc[0]["error"]


def test_crash_inside_the_write_transaction_keeps_previous_rows(project):
    store = Store(project.store_path)
    metric = load_catalog(project.metrics_dir).metrics["fraud_rate"]
    window = Window(D(2026, 3, 1), D(2026, 3, 3))
    with DuckDBEngine(project.source) as engine:
        rows = engine.run(metric, window)
    store.write_window(metric, window, rows, trigger="backfill", started_at=D(2026, 4, 1))
    before = leaf_rows(store, "leaves__fraud_rate")
    # A NULL dimension violates NOT NULL after the DELETE ran: the whole write must roll back.
    broken = rows.set_column(1, "country", pa.array([None] * rows.num_rows, pa.string()))
    with pytest.raises(duckdb.Error):
        store.write_window(metric, window, broken, trigger="backfill", started_at=D(2026, 4, 1))
    assert leaf_rows(store, "leaves__fraud_rate") == before
    assert (store.runs("fraud_rate")["status"] == "ok").sum() == 1


def test_definition_change_is_detected(project):
    store = Store(project.store_path)
    catalog = load_catalog(project.metrics_dir)
    compute(project, backfill_plan(catalog.select(None), D(2026, 3, 1), D(2026, 3, 3)), trigger="backfill", store=store)
    assert store.stale_metrics(catalog.select(None)) == []
    path = project.metrics_dir / "fraud_rate.sql"
    path.write_text(path.read_text().replace("WHERE is_fraud", "WHERE is_fraud AND country <> 'US'"))
    stale = store.stale_metrics(load_catalog(project.metrics_dir).select(None))
    assert [m.name for m, _ in stale] == ["fraud_rate"]


def test_due_windows_follow_the_store_and_lookback(project):
    store = Store(project.store_path)
    metric = load_catalog(project.metrics_dir).metrics["fraud_rate"]
    now = D(2026, 3, 10, 7, 30)
    first = due_windows(metric, store, now)
    assert first[0].start == D(2026, 1, 13) and first[-1].end == D(2026, 3, 10)  # 56 days of history
    compute(project, [(metric, w) for w in first], trigger="run", store=store)
    assert due_windows(metric, store, now) == []
    later = due_windows(metric, store, D(2026, 3, 13, 0, 5))
    assert [(w.start, w.end) for w in later] == [(D(2026, 3, 10), D(2026, 3, 13))]
    lookback = metric_from(FRAUD_RATE.replace("bounded: true", "bounded: true\nlookback: 2"), "fraud_rate")
    assert due_windows(lookback, store, D(2026, 3, 13, 0, 5))[0].start == D(2026, 3, 8)


def test_changed_definition_is_recomputed_by_run_not_trusted(project):
    """After the dimensions change the old leaf table is gone, so `run` must not treat
    the old windows as computed."""
    store = Store(project.store_path)
    metric = load_catalog(project.metrics_dir).metrics["fraud_rate"]
    now = D(2026, 3, 10, 7, 30)
    compute(project, [(metric, w) for w in due_windows(metric, store, now)], trigger="run", store=store)
    assert due_windows(metric, store, now) == []
    narrower = metric_from(FRAUD_RATE.replace("country, channel,\n", "country,\n").replace(
        "dimensions: [country, channel]", "dimensions: [country]"), "fraud_rate")
    assert [w.end for w in due_windows(narrower, store, now)][-1] == D(2026, 3, 10)
