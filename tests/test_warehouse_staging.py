"""A DuckDB source's window staged for Spark a batch at a time (monitor.warehouse.staging): the
same rows and the same failures as ``engine.run``, never more than one batch normalised at once,
and nothing left behind by a failed window. DuckDB and Parquet only: no Spark."""
from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import monitor.warehouse.staging as staging
from monitor.catalog import parse_metric
from monitor.config import SourceConfig
from monitor.engine import DuckDBEngine, Window
from monitor.errors import MetricRunError

from decline_world import METRIC, START, decline_leaves

DAYS = 10
WINDOW = Window(START, START + dt.timedelta(days=DAYS))


@pytest.fixture()
def world(tmp_path):
    """A source file with 10 days x 12 countries x 3 methods of decline-rate leaves in table t."""
    leaves = decline_leaves(days=DAYS, n_countries=12, seed=3, attack=None)  # noqa: F841 - read by DuckDB
    source = tmp_path / "source.duckdb"
    with duckdb.connect(str(source)) as con:
        con.execute("CREATE TABLE t AS SELECT * FROM leaves")
    return source


def metric_of(sql_body: str | None, tmp_path: Path):
    text = METRIC if sql_body is None else METRIC.rsplit("--- */", 1)[0] + "--- */\n" + sql_body
    metric, problems = parse_metric(text, tmp_path / "decline_rate.sql")
    assert not problems
    return metric


def staged_rows(result) -> pa.Table:
    return pq.read_table(result.path) if isinstance(result, staging.StagedWindow) else result


def sort(table: pa.Table) -> pa.Table:
    return table.sort_by([("ts", "ascending"), ("country", "ascending"), ("method", "ascending")])


def test_staged_rows_are_engine_runs_rows_one_batch_at_a_time(world, tmp_path, monkeypatch):
    metric = metric_of(None, tmp_path)
    seen = []
    real = staging.normalised
    monkeypatch.setattr(staging, "normalised", lambda m, batch: seen.append(batch.num_rows) or real(m, batch))
    with DuckDBEngine(SourceConfig(world)) as engine:
        want = engine.run(metric, WINDOW)
        result = staging.stage_window(engine, metric, WINDOW, tmp_path / "leaves", batch_rows=50)
    assert isinstance(result, staging.StagedWindow)
    assert result.num_rows == want.num_rows == 360
    assert sort(staged_rows(result)).equals(sort(want))
    assert len(seen) >= 360 // 50 and max(seen) <= 50  # the driver held one batch, never the window
    folder = result.path
    result.remove()
    assert not folder.exists()


def test_a_bad_window_fails_with_check_results_message_and_stages_nothing(world, tmp_path):
    """NaN measures spread over several batches: the message counts them all, as engine.run's."""
    metric = metric_of("SELECT ts, country, method, CASE WHEN country IN ('C01', 'C07') THEN 'nan'::DOUBLE "
                       "ELSE numerator END AS numerator, denominator FROM t WHERE ts >= $start AND ts < $end "
                       "ORDER BY ts, country, method", tmp_path)
    with DuckDBEngine(SourceConfig(world)) as engine:
        with pytest.raises(MetricRunError) as want:
            engine.run(metric, WINDOW)
        with pytest.raises(MetricRunError) as got:
            staging.stage_window(engine, metric, WINDOW, tmp_path / "leaves", batch_rows=25)
    assert str(got.value) == str(want.value)
    assert "60 row(s)" in str(got.value)  # 2 countries x 3 methods x 10 days, counted over every batch
    assert not list((tmp_path / "leaves" / staging.INCOMING).iterdir())


def test_a_query_failing_while_it_streams_names_metric_and_window_and_stages_nothing(world, tmp_path):
    metric = metric_of("SELECT ts, country, method, numerator, CASE WHEN ts >= TIMESTAMP '2026-01-12' "
                       "THEN error('source went away') ELSE denominator END AS denominator FROM t "
                       "WHERE ts >= $start AND ts < $end ORDER BY ts", tmp_path)
    with DuckDBEngine(SourceConfig(world)) as engine:
        with pytest.raises(MetricRunError, match=r"decline_rate failed for .*source went away"):
            staging.stage_window(engine, metric, WINDOW, tmp_path / "leaves", batch_rows=25)
    incoming = tmp_path / "leaves" / staging.INCOMING
    assert not incoming.exists() or not list(incoming.iterdir())


def test_null_dimensions_are_labelled_as_engine_run_labels_them(world, tmp_path):
    metric = metric_of("SELECT ts, CASE WHEN country = 'C02' THEN NULL WHEN country = 'C03' THEN '(null)' "
                       "ELSE country END AS country, method, numerator, denominator FROM t "
                       "WHERE ts >= $start AND ts < $end", tmp_path)
    with DuckDBEngine(SourceConfig(world)) as engine:
        want = engine.run(metric, WINDOW)
        got = staged_rows(staging.stage_window(engine, metric, WINDOW, tmp_path / "leaves", batch_rows=40))
    assert sort(got).equals(sort(want))
    assert {"(null)", "\\(null)"} <= set(got.column("country").to_pylist())


def test_an_empty_window_is_an_empty_table_and_no_folder(world, tmp_path):
    metric = metric_of(None, tmp_path)
    later = Window(START + dt.timedelta(days=400), START + dt.timedelta(days=401))
    with DuckDBEngine(SourceConfig(world)) as engine:
        result = staging.stage_window(engine, metric, later, tmp_path / "leaves")
    assert isinstance(result, pa.Table) and result.num_rows == 0
    assert result.schema.names == ["ts", "country", "method", "numerator", "denominator"]
    assert not list((tmp_path / "leaves" / staging.INCOMING).iterdir())


def test_a_dropped_window_removes_its_folder_and_stale_folders_of_killed_runs_go(world, tmp_path):
    metric = metric_of(None, tmp_path)
    with DuckDBEngine(SourceConfig(world)) as engine:
        result = staging.stage_window(engine, metric, WINDOW, tmp_path / "leaves")
    folder = result.path
    del result  # a window the writer never took (an earlier window of the metric failed)
    assert not folder.exists()
    incoming = tmp_path / "leaves" / staging.INCOMING
    killed, live = incoming / "killed", incoming / "live"
    for path in (killed, live):
        path.mkdir(parents=True)
        (path / "part-0.parquet").write_bytes(b"x")
    old = time.time() - staging.STALE_SECONDS - 60
    os.utime(killed, (old, old))
    staging.remove_stale(tmp_path / "leaves")
    assert not killed.exists() and live.exists()


MEAN_HEADER = METRIC.replace("name: decline_rate", "name: amount_mean").replace("kind: ratio", "kind: mean")


@pytest.mark.parametrize("count", ["denominator", "CASE WHEN country IN ('C01', 'C07') THEN -denominator"
                                                   " ELSE denominator END"])
def test_a_mean_window_is_staged_with_its_kind_rules_over_every_batch(world, tmp_path, count):
    """A mean's own row rules (monitor.engine.kinds) hold for the staged window as for engine.run:
    good rows staged alike; negative counts in many batches fail with engine.run's message,
    which counts the rows of every batch."""
    body = (f"SELECT ts, country, method, numerator AS value_sum, {count} AS value_count,"
            " numerator * numerator AS value_sq_sum FROM t WHERE ts >= $start AND ts < $end ORDER BY ts, country")
    metric, problems = parse_metric(MEAN_HEADER.rsplit("--- */", 1)[0] + "--- */\n" + body, tmp_path / "amount_mean.sql")
    assert not problems and metric.kind == "mean"
    with DuckDBEngine(SourceConfig(world)) as engine:
        if count == "denominator":
            want = engine.run(metric, WINDOW)
            got = staging.stage_window(engine, metric, WINDOW, tmp_path / "leaves", batch_rows=50)
            assert sort(staged_rows(got)).equals(sort(want)) and want.num_rows == 360
            return
        with pytest.raises(MetricRunError) as want:
            engine.run(metric, WINDOW)
        with pytest.raises(MetricRunError) as got:
            staging.stage_window(engine, metric, WINDOW, tmp_path / "leaves", batch_rows=25)
    assert str(got.value) == str(want.value)
    assert "negative value_count in 60 row(s)" in str(got.value)
    assert not list((tmp_path / "leaves" / staging.INCOMING).iterdir())
