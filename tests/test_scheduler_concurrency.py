"""The dashboard reads while the scheduler writes: two real processes on one DuckDB file.

The writer replaces windows over and over (under the writer lock, as `serve`
does); every row of a write carries its version, and the write logs an 'ok'
run in the same transaction. A consistent read therefore sees, per window,
the full row count, one version only, and a version equal to the number of ok
runs logged for the window. A half-written window would break one of these.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parents[1]
ROWS, WINDOWS = 500, 3

COMMON = textwrap.dedent(f"""\
    import datetime as dt, sys, time
    from pathlib import Path
    import pyarrow as pa
    from monitor.catalog import Metric
    from monitor.engine import Window
    from monitor.store import Store
    ROWS, WINDOWS = {ROWS}, {WINDOWS}
    METRIC = Metric(name="load_test", kind="sum", grain="day", dimensions=("country",), schedule="0 6 * * *",
                    sql="SELECT 1", path=Path("load_test.sql"), sql_line=1)
    DAY0 = dt.datetime(2026, 3, 1)
    def window(i):
        return Window(DAY0 + dt.timedelta(days=i), DAY0 + dt.timedelta(days=i + 1))
    def rows(i, version, n=ROWS):
        return pa.table({{"ts": [window(i).start] * n, "country": [f"c{{k}}" for k in range(n)],
                          "value": [float(version)] * n}})
""")

WRITER = COMMON + textwrap.dedent("""\
    from monitor.scheduler import writer_lock
    store, rounds, n, done = Store(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    ready = done.with_name("ready")
    def ok_runs(i):
        if not store.path.exists():
            return 0
        with store.connect(read_only=True) as con:
            return con.execute("SELECT count(*) FROM runs WHERE status = 'ok' AND window_start = ?",
                               [window(i).start]).fetchone()[0]
    for round_ in range(rounds):
        for i in range(WINDOWS):
            with writer_lock(store.path, wait=30, purpose="writer test"):
                version = ok_runs(i) + 1  # the rows carry the count of ok runs including this one
                store.write_window(METRIC, window(i), rows(i, version, n), trigger="serve",
                                   started_at=DAY0, now=DAY0)
        ready.touch()
        if round_ == 0:
            # the reader's interpreter may still be starting: wait (bounded) for its first
            # read, so the later rounds happen while it reads, not all before it
            deadline = time.monotonic() + 30
            while not done.with_name("reading").exists() and time.monotonic() < deadline:
                time.sleep(0.02)
    done.touch()
""")

READER = COMMON + textwrap.dedent("""\
    store, n, done = Store(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    reads, states = 0, set()
    while not done.with_name("ready").exists():  # the writer's first round created the tables
        time.sleep(0.05)
    while not done.exists() or reads < 2:
        with store.connect(read_only=True) as con:
            leaves = con.execute("SELECT ts, count(*), min(value), max(value) FROM leaves__load_test"
                                 " GROUP BY ts ORDER BY ts").fetchall()
            runs = dict(con.execute("SELECT window_start, count(*) FROM runs WHERE status = 'ok'"
                                    " GROUP BY window_start").fetchall())
        for ts, count, low, high in leaves:
            if count != n or low != high or runs.get(ts) != int(high):
                print(f"INCONSISTENT {ts}: {count} rows, versions {low}..{high}, {runs.get(ts)} ok runs", flush=True)
                sys.exit(3)
        reads += 1
        states.add(tuple(high for _, _, _, high in leaves))
        done.with_name("reading").touch()
    print(reads, len(states), flush=True)
""")

def _python(script: str, *args, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def _check_consistent(store: Path, n: int) -> int:
    """Every window whole and matching its run log; returns the number of windows present."""
    con = duckdb.connect(str(store), read_only=True)
    try:
        leaves = con.execute("SELECT ts, count(*), min(value), max(value) FROM leaves__load_test GROUP BY ts").fetchall()
        runs = dict(con.execute("SELECT window_start, count(*) FROM runs WHERE status = 'ok' GROUP BY window_start")
                    .fetchall())
    finally:
        con.close()
    for ts, count, low, high in leaves:
        assert count == n and low == high, f"partial window {ts}: {count} rows, versions {low}..{high}"
        assert runs.get(ts) == int(high), f"window {ts} at version {high} but {runs.get(ts)} ok runs logged"
    return len(leaves)


@pytest.mark.slow
def test_dashboard_reads_while_scheduler_writes(tmp_path):
    store, done = tmp_path / "store.duckdb", tmp_path / "done"
    # Enough rounds that the reader, which starts after the first one, sees the store change.
    writer = _python(WRITER, store, 12, ROWS, done)
    reader = _python(READER, store, ROWS, done)
    w_out, w_err = writer.communicate(timeout=80)
    r_out, r_err = reader.communicate(timeout=80)
    assert writer.returncode == 0, w_err
    assert reader.returncode == 0, r_out + r_err  # no lock error, no inconsistent read
    reads, states = map(int, r_out.split())
    assert states >= 2, (reads, states)  # it read between writes, not just before or after them
    assert _check_consistent(store, ROWS) == WINDOWS


@pytest.mark.slow
def test_kill_9_mid_write_never_leaves_a_partial_window(tmp_path):
    store, n = tmp_path / "store.duckdb", 40_000  # big writes, so a kill lands inside one
    ready = tmp_path / "ready"
    for delay in (0.0, 0.3, 0.7):
        ready.unlink(missing_ok=True)
        writer = _python(WRITER, store, 1000, n, tmp_path / "never")
        while not ready.exists():  # the first round is whole; then kill at some point of a later one
            assert writer.poll() is None, writer.stderr.read()
            time.sleep(0.02)
        time.sleep(delay)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        assert writer.returncode == -signal.SIGKILL
        assert _check_consistent(store, n) == WINDOWS
