"""A backfill ending in the future computes only complete buckets and records no future window
(issue 19, defect 2): the next `run` computes the rest when due and `status` shows the lag."""
from __future__ import annotations

import datetime as dt
import json

import duckdb

from test_cli import invoke


def _computed_until(project, metric: str) -> dt.datetime:
    con = duckdb.connect(str(project.store_path), read_only=True)
    try:
        return con.execute("SELECT max(window_end) FROM runs WHERE metric = ? AND status = 'ok'", [metric]).fetchone()[0]
    finally:
        con.close()


def test_backfill_into_the_future_stops_at_now_and_run_catches_up(project):
    cfg = str(project.root / "monitor.toml")
    back = invoke("--config", cfg, "--now", "2026-03-05T12:00", "backfill", "--start", "2026-03-01",
                  "--end", "2026-04-01", "--no-detect")
    assert back.exit_code == 0, back.output
    assert "2026-03-05" in back.output and "not complete" in back.output
    # The bucket holding "now" (2026-03-05) is partial: not recorded as computed, nor anything later.
    assert _computed_until(project, "fraud_rate") == dt.datetime(2026, 3, 5)

    status = json.loads(invoke("--config", cfg, "--now", "2026-03-09T07:00", "status", "--format", "json").output)
    lag = {m["metric"]: m["lag_buckets"] for m in status["metrics"]}
    assert lag["fraud_rate"] == 4  # 03-05 .. 03-08 are due by 03-09 06:00

    run = invoke("--config", cfg, "--now", "2026-03-09T07:00", "run", "--no-alerts")
    assert "Nothing due" not in run.output
    assert _computed_until(project, "fraud_rate") == dt.datetime(2026, 3, 9)
    con = duckdb.connect(str(project.store_path), read_only=True)
    try:
        day = con.execute("SELECT sum(denominator) FROM leaves__fraud_rate WHERE ts = '2026-03-05'").fetchone()[0]
    finally:
        con.close()
    source = duckdb.connect(str(project.root / "source.duckdb"), read_only=True)
    try:
        whole = source.execute("SELECT count(*) FROM orders WHERE created_at >= '2026-03-05' "
                               "AND created_at < '2026-03-06'").fetchone()[0]
    finally:
        source.close()
    assert day == whole > 0  # the 03-05 bucket holds the whole day


def test_backfill_entirely_in_the_future_computes_nothing(project):
    cfg = str(project.root / "monitor.toml")
    back = invoke("--config", cfg, "--now", "2026-03-05T12:00", "backfill", "--start", "2026-03-10",
                  "--end", "2026-04-01", "--no-detect")
    assert back.exit_code == 1
    assert "future" in back.output
    assert not project.store_path.exists() or _computed_until(project, "fraud_rate") is None
