"""Readers get the store within ~2 s while a backfill of small windows writes it, and a reader
kept out too long is told who holds the store (issue 19, defect 5). Real processes, one DuckDB file."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import make_source
from monitor.errors import StoreError
from monitor.store import Store

BOUND_SECONDS = 2.0


@pytest.mark.slow
def test_reads_wait_less_than_two_seconds_during_a_backfill_of_small_windows(project):
    make_source(project.root / "source.duckdb", days=240, start=__import__("datetime").datetime(2025, 6, 1))
    monitor = Path(sys.executable).with_name("monitor")
    writer = subprocess.Popen([str(monitor), "--config", str(project.root / "monitor.toml"), "backfill",
                               "--start", "2025-06-01", "--end", "2026-01-27", "--chunk", "1", "--no-detect"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    store = Store(project.store_path)
    waits = []
    try:
        deadline = time.monotonic() + 60
        while not project.store_path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # the writer is in its stride
        stop = time.monotonic() + 8
        while writer.poll() is None and time.monotonic() < stop:
            started = time.monotonic()
            with store.connect(read_only=True) as con:
                con.execute("SELECT count(*) FROM runs").fetchone()
            if writer.poll() is None:  # only reads that overlapped the backfill count
                waits.append(time.monotonic() - started)
            time.sleep(0.1)
    finally:
        writer.terminate()
        writer.wait(timeout=30)
    assert waits, "no read overlapped the backfill"
    print(f"\nreads during backfill: {len(waits)}, max wait {max(waits):.2f} s, "
          f"median {sorted(waits)[len(waits) // 2]:.2f} s")
    assert max(waits) < BOUND_SECONDS, sorted(waits)[-5:]
    assert len(waits) >= 5, f"the backfill ended too soon to measure ({len(waits)} reads)"


def test_a_reader_kept_out_is_told_who_writes(tmp_path):
    path = tmp_path / "store.duckdb"
    Store(path).init()
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""\
        import sys, time, duckdb
        from monitor.scheduler import writer_lock
        with writer_lock({str(path)!r}, wait=5, purpose="monitor backfill"):
            con = duckdb.connect({str(path)!r})
            print("holding", flush=True)
            time.sleep(20)
    """)], stdout=subprocess.PIPE, text=True, env={**os.environ})
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(StoreError) as caught:
            with Store(path, lock_wait=0.5).connect(read_only=True):
                pass
    finally:
        holder.kill()
        holder.wait()
    message = str(caught.value)
    assert "monitor backfill" in message and f"pid {holder.pid}" in message and "writer lock" in message
    assert "IO Error" not in message
