"""`monitor serve` as real processes: timeout, SIGTERM, kill -9, a second writer.

The metrics here are slow on purpose (an uncorrelated scalar subquery burns
CPU once per query), so signals land while a window is being computed. After
every scenario the store must hold only whole windows: each bucket covered by
an 'ok' run has exactly the rows the source gives, and no other bucket has rows.
"""
from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from monitor.catalog import load_catalog
from monitor.scheduler import SchedulerService, SchedulerSettings, render_status, scheduler_status
from monitor.store import Store

ROOT = Path(__file__).resolve().parents[1]
NOW = "2026-03-10T07:00"
SLOW = """\
/* ---
name: {name}
kind: sum
grain: day
dimensions: [country]
schedule: "0 6 * * *"
--- */
SELECT date_trunc('day', created_at) AS ts, country,
       count(*) + 0 * (SELECT sum(hash(i)) FROM range({burn}) t(i)) AS value
FROM orders
WHERE created_at >= $start AND created_at < $end
GROUP BY ALL
"""


def slow_metrics(project, names, burn=15_000_000) -> None:
    for path in project.metrics_dir.glob("*.sql"):
        path.unlink()
    for name in names:
        (project.metrics_dir / f"{name}.sql").write_text(SLOW.format(name=name, burn=burn))


def serve(project, *args, log: Path, new_session: bool = False) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "monitor.scheduler", "--config", str(project.root / "monitor.toml"), "--now", NOW,
         "serve", *args], env=env, stdout=log.open("a"), stderr=subprocess.STDOUT, start_new_session=new_session)


def ok_runs(project) -> list[tuple]:
    store = Store(project.store_path)
    if not store.path.exists():
        return []
    try:
        with store.connect(read_only=True) as con:
            return con.execute("SELECT metric, window_start, window_end FROM runs WHERE status = 'ok'"
                               " ORDER BY run_id").fetchall()
    except duckdb.CatalogException:
        return []


def wait_for(condition, timeout: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}" + (f"; log:\n{log.read_text()}" if log else ""))


def assert_whole_windows(project, names) -> dict[str, dt.datetime]:
    """Every covered bucket equals the source; nothing outside covered buckets. Returns computed_until."""
    runs = ok_runs(project)
    src = duckdb.connect(str(project.source.database), read_only=True)
    truth = {(d.replace(tzinfo=None), c): float(n) for d, c, n in src.execute(
        "SELECT date_trunc('day', created_at), country, count(*) FROM orders GROUP BY ALL").fetchall()}
    src.close()
    until = {}
    with Store(project.store_path).connect(read_only=True) as con:
        for name in names:
            covered = set()
            for metric, start, end in runs:
                if metric == name:
                    day = start
                    while day < end:
                        covered.add(day)
                        day += dt.timedelta(days=1)
            tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
            rows = con.execute(f"SELECT ts, country, value FROM leaves__{name}").fetchall() \
                if f"leaves__{name}" in tables else []
            got = {(ts, c): v for ts, c, v in rows}
            assert {ts for ts, _ in got} <= covered, f"{name}: rows outside any ok window"
            want = {k: v for k, v in truth.items() if k[0] in covered}
            assert got == want, f"{name}: a covered bucket differs from the source"
            until[name] = max((end for m, _, end in runs if m == name), default=None)
    return until


def assert_no_double_runs(project) -> None:
    """With no lookback, two ok runs of one metric never cover the same bucket."""
    seen: dict[str, list] = {}
    for metric, start, end in ok_runs(project):
        for other_start, other_end in seen.get(metric, []):
            assert end <= other_start or start >= other_end, f"{metric}: {start}..{end} ran twice"
        seen.setdefault(metric, []).append((start, end))


@pytest.mark.slow
def test_a_window_over_the_timeout_is_killed_rolled_back_and_reported(project):
    slow_metrics(project, ["hang"], burn=4_000_000_000)
    (project.metrics_dir / "quick.sql").write_text(SLOW.format(name="quick", burn=1))
    service = SchedulerService(project, clock=lambda: dt.datetime(2026, 3, 10, 7), after_compute=None,
                               settings=SchedulerSettings(timeout=1.5))
    started = time.monotonic()
    reports = {r.metric: r for r in service.catch_up()}
    assert time.monotonic() - started < 40
    hang = reports["hang"]
    assert hang.failed and "timed out after 1.5 s" in hang.error and "rolled back" in hang.error
    assert hang.outcome.timed_out and hang.outcome.windows_ok == 0
    assert not reports["quick"].failed and reports["quick"].outcome.windows_ok == 2  # the worker's happy path
    store = Store(project.store_path)
    runs = store.runs("hang")
    assert list(runs["status"]) == ["failed"] and "timed out" in runs["error"][0]
    assert not store.has_leaves("hang") or store.read_leaves(load_catalog(project.metrics_dir).metrics["hang"]).empty
    assert_whole_windows(project, ["quick"])


@pytest.mark.slow
def test_sigterm_stops_cleanly_kill_9_leaves_no_partial_window_and_restart_catches_up(project, tmp_path):
    names = ["slow_a", "slow_b"]
    slow_metrics(project, names)
    log = tmp_path / "serve.log"

    first = serve(project, log=log)
    wait_for(lambda: len(ok_runs(project)) >= 1, 60, "a first window", first, log)
    first.send_signal(signal.SIGTERM)  # `kill PID`: finish the window in progress, exit 0
    assert first.wait(timeout=60) == 0, log.read_text()
    assert "stopped cleanly" in log.read_text()
    done = len(ok_runs(project))
    assert done < 2 * len(names), "stopped before catching everything up"
    assert_whole_windows(project, names)

    second = serve(project, log=log, new_session=True)
    wait_for(lambda: len(ok_runs(project)) > done, 60, "progress after restart", second, log)
    time.sleep(0.3)  # most likely inside the next window's query or write
    os.killpg(second.pid, signal.SIGKILL)  # the whole group: serve and its run worker, as in a crash
    second.wait()
    assert_whole_windows(project, names)

    status = render_status(scheduler_status(project, load_catalog(project.metrics_dir), now=dt.datetime(2026, 3, 10, 7)))
    assert "serve: NOT running" in status and "without a clean shutdown" in status

    last = serve(project, "--once", "--isolation", "inline", log=log)  # (inline: one process less to start)
    assert last.wait(timeout=90) == 0, log.read_text()
    until = assert_whole_windows(project, names)
    assert until == {name: dt.datetime(2026, 3, 10) for name in names}  # caught up, as of the 06:00 run
    assert_no_double_runs(project)


@pytest.mark.slow
def test_an_orphaned_run_keeps_the_lock_so_a_second_serve_never_double_runs(project, tmp_path):
    names = ["slow_a", "slow_b"]
    slow_metrics(project, names)
    log = tmp_path / "serve.log"
    first = serve(project, log=log)
    wait_for(lambda: len(ok_runs(project)) >= 1, 60, "a first window", first, log)
    os.kill(first.pid, signal.SIGKILL)  # only serve: its worker is mid-window, holding the inherited lock
    first.wait()
    # must wait for the orphan, then continue where it stopped
    second = serve(project, "--once", "--isolation", "inline", log=log)
    assert second.wait(timeout=90) == 0, log.read_text()
    assert_no_double_runs(project)
    until = assert_whole_windows(project, names)
    assert until == {name: dt.datetime(2026, 3, 10) for name in names}
