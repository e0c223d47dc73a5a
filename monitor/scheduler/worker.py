"""The child process of :class:`monitor.scheduler.runner.ProcessRunner`.

``python -m monitor.scheduler.worker EVENTS_FD`` reads a pickled order (config,
plan, trigger, clock offset, timeout) from stdin, computes the plan one window
at a time and writes one JSON line per event to EVENTS_FD.

SIGTERM/SIGINT: finish the window in progress, then stop. If ``serve`` dies,
the worker notices (its events pipe breaks or it is re-parented), finishes the
window in progress and exits, releasing the inherited writer lock. A window
running far beyond the timeout kills the worker itself, so even an orphan
cannot hold the lock forever.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import pickle
import signal
import sys
import threading
import time

# Past the timeout the parent kills the worker; this margin is only for an orphaned worker.
SELF_KILL_MARGIN = 10.0


def main(argv: list[str]) -> int:
    events_fd = int(argv[1])
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    parent = os.getppid()

    def on_signal(signum, frame):  # noqa: ARG001
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    order = pickle.load(sys.stdin.buffer)

    from monitor.scheduler.runner import compute_plan
    from monitor.clock import utc_naive
    from monitor.store import Store

    offset = dt.timedelta(seconds=order["clock_offset"])
    timeout = float(order["timeout"])
    window_started = [None]
    out = os.fdopen(events_fd, "w", buffering=1)

    def emit(data: dict) -> None:
        if data["event"] == "start":
            window_started[0] = time.monotonic()
        elif data["event"] == "done":
            window_started[0] = None
        try:
            out.write(json.dumps(data) + "\n")
        except (BrokenPipeError, OSError):
            stop.set()  # serve is gone: finish this window and exit

    def should_stop() -> bool:
        return stop.is_set() or os.getppid() != parent

    def watchdog() -> None:
        while True:
            time.sleep(1.0)
            started = window_started[0]
            if started is not None and time.monotonic() - started > timeout + SELF_KILL_MARGIN:
                os.kill(os.getpid(), signal.SIGKILL)  # the window in progress rolls back

    threading.Thread(target=watchdog, daemon=True).start()
    compute_plan(order["config"], order["plan"], trigger=order["trigger"], store=Store(order["store_path"]),
                 clock=lambda: utc_naive() + offset, should_stop=should_stop, emit=emit)
    try:
        out.close()
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
