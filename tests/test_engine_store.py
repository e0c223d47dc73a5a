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


# -- backfill speed: chunks, duplicate check, overlapped writer (issue 2) ------------------------

def test_backfill_uses_large_chunks_while_run_keeps_small_ones(project):
    catalog = load_catalog(project.metrics_dir)
    hourly = metric_from(ORDER_COUNT_HOURLY, "order_count_hourly")
    plan = backfill_plan([*catalog.select(None), hourly], D(2026, 1, 1), D(2026, 5, 1))
    spans = {m.name: [(w.start, w.end) for mm, w in plan if mm is m] for m, _ in plan}
    assert spans["fraud_rate"] == [(D(2026, 1, 1), D(2026, 5, 1))]  # 120 days: one query, one transaction
    assert spans["order_count_hourly"] == [(D(2026, 1, 1), D(2026, 4, 3)), (D(2026, 4, 3), D(2026, 5, 1))]
    assert len(backfill_plan(catalog.select(["fraud_rate"]), D(2026, 1, 1), D(2026, 5, 1), chunk=31)) == 4
    store = Store(project.store_path)
    assert due_windows(catalog.metrics["fraud_rate"], store, D(2026, 3, 10, 7))[0].end == D(2026, 2, 13)  # 31 days


ORDER_COUNT_HOURLY = """\
/* ---
name: order_count_hourly
kind: sum
grain: hour
dimensions: [country]
schedule: "5 * * * *"
--- */
SELECT date_trunc('hour', created_at) AS ts, country, count(*) AS value
FROM orders WHERE created_at >= $start AND created_at < $end GROUP BY ALL
"""


def test_duplicate_leaves_are_summed_unique_leaves_copied(project):
    store = Store(project.store_path)
    metric = load_catalog(project.metrics_dir).metrics["fraud_rate"]
    window = Window(D(2026, 3, 1), D(2026, 3, 3))
    day1, day2 = D(2026, 3, 1), D(2026, 3, 2)
    unique = pa.table({"ts": pa.array([day1, day1, day2], pa.timestamp("us")), "country": ["US", "US", "US"],
                       "channel": ["web", "app", "web"], "numerator": [1.0, 2.0, 3.0], "denominator": [10.0, 20.0, 30.0]})
    store.write_window(metric, window, unique, trigger="backfill", started_at=day1)
    assert leaf_rows(store, "leaves__fraud_rate") == [(day1, "US", "app", 2.0, 20.0), (day1, "US", "web", 1.0, 10.0),
                                                     (day2, "US", "web", 3.0, 30.0)]
    # A GROUP BY slip: the same leaf twice (and "(null)" from a NULL beside a real "(null)").
    twice = pa.table({"ts": pa.array([day1, day1, day2], pa.timestamp("us")), "country": ["US", "US", "(null)"],
                      "channel": ["web", "web", "web"], "numerator": [1.0, 2.0, 3.0], "denominator": [10.0, 20.0, 30.0]})
    store.write_window(metric, window, twice, trigger="backfill", started_at=day1)
    assert leaf_rows(store, "leaves__fraud_rate") == [(day1, "US", "web", 3.0, 30.0), (day2, "(null)", "web", 3.0, 30.0)]
    # Keys in another type than stored (ns timestamps, integer dimensions) are always grouped after the cast.
    nanos = pa.table({"ts": pa.array([1_772_323_200_000_000_001, 1_772_323_200_000_000_002], pa.timestamp("ns")),
                      "country": [1, 1], "channel": ["web", "web"], "numerator": [1.0, 1.0], "denominator": [2.0, 2.0]})
    store.write_window(metric, window, nanos, trigger="backfill", started_at=day1)
    assert leaf_rows(store, "leaves__fraud_rate") == [(day1, "1", "web", 2.0, 4.0)]


def test_key_uniqueness_check_agrees_with_python_sets():
    import random

    from monitor.store.store import keys_are_unique

    rng = random.Random(5)
    for case in range(300):
        n = rng.randint(0, 40)
        pool = [None, "a", "b", "(null)", "é", ""][: rng.randint(2, 6)]
        days = [D(2026, 1, 1 + rng.randint(0, 2)) for _ in range(n)]
        dims = {f"d{k}": [rng.choice(pool) for _ in range(n)] for k in range(rng.randint(0, 3))}
        table = pa.table({"ts": pa.array(days, pa.timestamp("us")), **{k: pa.array(v, pa.string()) for k, v in dims.items()}})
        if n and case % 3 == 0:  # several record batches, as DuckDB returns large results
            table = pa.concat_tables([table.slice(0, n // 2), table.slice(n // 2)])
        expected = len(set(zip(days, *dims.values()))) == n
        assert keys_are_unique(table, ["ts", *dims]) == expected, (table.to_pydict(), expected)
    assert not keys_are_unique(pa.table({"ts": pa.array([D(2026, 1, 1), D(2026, 1, 2)], pa.timestamp("ns"))}), ["ts"])
    wide = pa.table({"ts": pa.array([D(2026, 1, 1)] * 2, pa.timestamp("us")),
                     **{f"d{k}": pa.array([f"x{k}", f"y{k}"]) for k in range(70)}})
    assert not keys_are_unique(wide, ["ts", *(f"d{k}" for k in range(70))])  # 2**70 combinations: cannot pack, so group


def test_later_windows_of_a_failed_metric_are_skipped_and_others_written_in_order(project):
    store = Store(project.store_path)
    catalog = load_catalog(project.metrics_dir)
    exploding = metric_from(FRAUD_RATE.replace(
        "count(*) AS denominator", "count(*) + CASE WHEN min(created_at) < TIMESTAMP '2026-03-03' THEN error('boom')::INT ELSE 0 END"
        " AS denominator"), "fraud_rate")  # only its first window fails; the later ones are skipped
    plan = [(m, w) for m in (exploding, catalog.metrics["order_count"])
            for _, w in backfill_plan([m], D(2026, 3, 1), D(2026, 3, 7), chunk=2)]
    seen = []
    result = compute(project, plan, trigger="backfill", store=store, on_window=lambda m, w: seen.append((m.name, w)))
    assert seen == [(m.name, w) for m, w in plan]
    assert [(f[0], f[1].start) for f in result.failures] == [("fraud_rate", D(2026, 3, 1)), ("fraud_rate", D(2026, 3, 3)),
                                                             ("fraud_rate", D(2026, 3, 5))]
    assert "boom" in result.failures[0][2] and result.failures[1][2].startswith("skipped after earlier failure")
    assert result.windows_ok == 3 and result.rows == 6 * 4
    runs = store.runs(limit=10).sort_values("run_id")
    assert list(zip(runs["metric"], runs["status"])) == [("fraud_rate", "failed")] + [("order_count", "ok")] * 3
    assert len(leaf_rows(store, "leaves__order_count")) == 6 * 4


def test_the_writer_hands_the_store_to_readers_while_it_waits_for_a_slow_query(project):
    """A reader in another process gets the file while the next source query runs."""
    import subprocess
    import sys
    import time

    from monitor.pipeline import _WindowWriter

    store = Store(project.store_path, max_hold=0.2)
    metric = load_catalog(project.metrics_dir).metrics["order_count"]
    window = Window(D(2026, 3, 1), D(2026, 3, 3))
    with DuckDBEngine(project.source) as engine:
        rows = engine.run(metric, window)
    reader = ("import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=True);"
              " print(con.execute('SELECT count(*) FROM leaves__order_count').fetchone()[0])")
    writer = _WindowWriter(store, "backfill", lambda: D(2026, 4, 1), None)
    try:
        writer.put(metric, window, D(2026, 4, 1), rows, None)
        time.sleep(0.6)  # the "query" of the next window: longer than max_hold / 2
        out = subprocess.run([sys.executable, "-c", reader, str(project.store_path)], capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "8"
        writer.put(metric, Window(D(2026, 3, 3), D(2026, 3, 4)), D(2026, 4, 1), rows.slice(0, 0), None)
    finally:
        writer.finish()
    writer.raise_error()
    assert writer.result.windows_ok == 2


def test_an_interrupt_stops_after_the_window_being_written(project):
    store = Store(project.store_path)
    metric = load_catalog(project.metrics_dir).metrics["order_count"]
    plan = backfill_plan([metric], D(2026, 3, 1), D(2026, 3, 9), chunk=2)

    def interrupt(m, w):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        compute(project, plan, trigger="backfill", store=store, on_window=interrupt)
    runs = store.runs("order_count")
    assert list(runs["status"]) == ["ok"] and runs.iloc[0]["window_end"] == D(2026, 3, 3)
    assert {r[0] for r in leaf_rows(store, "leaves__order_count")} == {D(2026, 3, 1), D(2026, 3, 2)}


def test_nothing_to_compute_creates_no_store_file(project):
    store = Store(project.store_path)
    assert compute(project, [], trigger="run", store=store).windows_ok == 0
    assert not project.store_path.exists()
