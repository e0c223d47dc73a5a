"""The writer lock, with real processes: exclusive, names its holder, dies with its holder."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from monitor.scheduler import LockTimeout, lock_path, read_holder, writer_lock

ROOT = Path(__file__).resolve().parents[1]

# Each process increments a counter file 15 times with a read-sleep-write that loses
# updates unless the lock serialises it, and logs its enter/exit times.
INCREMENT = textwrap.dedent("""\
    import sys, time
    from pathlib import Path
    from monitor.scheduler import writer_lock
    store, counter, log = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    for _ in range(15):
        with writer_lock(store, wait=30, purpose="increment"):
            entered = time.monotonic()
            value = int(counter.read_text())
            time.sleep(0.002)
            counter.write_text(str(value + 1))
            with log.open("a") as fh:
                fh.write(f"{entered} {time.monotonic()}\\n")
""")

HOLD = textwrap.dedent("""\
    import sys, time
    from monitor.scheduler import writer_lock
    with writer_lock(sys.argv[1], wait=5, purpose="holder test"):
        print("locked", flush=True)
        time.sleep(60)
""")


def _python(script: str, *args: str, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", script, *args], env=env, **kwargs)


def _hold(store: Path) -> subprocess.Popen:
    proc = _python(HOLD, str(store), stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_lock_serialises_writers_across_processes(tmp_path):
    store, counter, log = tmp_path / "store.duckdb", tmp_path / "counter", tmp_path / "log"
    counter.write_text("0")
    procs = [_python(INCREMENT, str(store), str(counter), str(log)) for _ in range(3)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    assert counter.read_text() == "45"  # no lost update
    spans = sorted(tuple(map(float, line.split())) for line in log.read_text().splitlines())
    assert all(end <= nxt_start for (_, end), (nxt_start, _) in zip(spans, spans[1:]))  # never overlapping


def test_a_waiter_gives_up_naming_the_holder(tmp_path):
    store = tmp_path / "store.duckdb"
    proc = _hold(store)
    try:
        holder = read_holder(store)
        assert holder["pid"] == proc.pid and holder["purpose"] == "holder test"
        started = time.monotonic()
        with pytest.raises(LockTimeout) as err:
            with writer_lock(store, wait=0.3):
                pass
        assert 0.25 < time.monotonic() - started < 5
        assert f"pid {proc.pid}" in str(err.value) and "holder test" in str(err.value)
        assert err.value.holder["pid"] == proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_kill_9_of_the_holder_frees_the_lock(tmp_path):
    store = tmp_path / "store.duckdb"
    proc = _hold(store)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert lock_path(store).exists()  # the file stays, with the dead holder's text in it...
    assert read_holder(store) is None  # ...but nobody holds the lock
    with writer_lock(store, wait=2) as lock:
        assert lock.info["pid"] == os.getpid()
        assert read_holder(store)["pid"] == os.getpid()
    assert read_holder(store) is None


def test_reentrant_in_one_thread_exclusive_between_threads(tmp_path):
    store = tmp_path / "store.duckdb"
    order = []
    with writer_lock(store, wait=0) as outer:
        with writer_lock(store, wait=0) as inner:  # the cycle may call code that takes it again
            assert inner is outer

        def other():
            try:
                with writer_lock(store, wait=0.1):
                    order.append("other got it while held")
            except LockTimeout:
                order.append("other waited")

        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert order == ["other waited"]
    with writer_lock(store, wait=0):  # released after the outer block
        pass
