"""Runners: how the scheduler executes a plan of (metric, window) pairs.

Both runners compute one window at a time with :func:`monitor.pipeline.compute`
(the code `run` and `backfill` use), so each window is one atomic write and a
stop request takes effect between windows.

* :class:`ProcessRunner` (default) runs the plan in a child process
  (``python -m monitor.scheduler.worker``). A window over the timeout is
  killed, which rolls it back (the store writes a window in one transaction),
  and a crash of the query engine cannot take ``serve`` down. The child
  inherits the writer lock's file descriptor, so even if ``serve`` itself is
  killed, nobody else can write until the child has exited.
* :class:`InlineRunner` runs in the calling process: no hard timeout (a hung
  query cannot be interrupted), for debugging and tests.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import pickle
import selectors
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from monitor.catalog import Metric
from monitor.clock import utc_naive
from monitor.engine import Window
from monitor.store.lock import WriterLock
from monitor.store import Store

log = logging.getLogger(__name__)

Plan = list[tuple[Metric, Window]]
Clock = Callable[[], dt.datetime]
PACKAGE_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class RunOutcome:
    """What happened to a plan: per-window results, and why it ended early if it did."""

    windows_ok: int = 0
    rows: int = 0
    done: list[tuple[str, Window]] = field(default_factory=list)  # written, in order
    failures: list[tuple[str, Window, str]] = field(default_factory=list)  # (metric, window, error)
    stopped: bool = False  # a stop was requested: windows not started are left for the next run
    timed_out: bool = False
    crashed: str | None = None  # the worker died (how), if it did
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures and not self.crashed


class _Outcome:
    """Builds a RunOutcome from window events (in-process or read from a worker)."""

    def __init__(self) -> None:
        self.outcome = RunOutcome()
        self.in_progress: tuple[str, Window] | None = None
        self.started_at = 0.0

    def event(self, data: dict) -> None:
        kind = data["event"]
        window = Window(dt.datetime.fromisoformat(data["start"]), dt.datetime.fromisoformat(data["end"])) \
            if "start" in data else None
        if kind == "start":
            self.in_progress = (data["metric"], window)
            self.started_at = time.monotonic()
        elif kind == "done":
            self.in_progress = None
            if data["ok"]:
                self.outcome.windows_ok += 1
                self.outcome.rows += data["rows"]
                self.outcome.done.append((data["metric"], window))
            else:
                self.outcome.failures.append((data["metric"], window, data["error"]))
        elif kind == "finished":
            self.outcome.stopped = bool(data.get("stopped"))


def _event(kind: str, metric: Metric | None = None, window: Window | None = None, **extra) -> dict:
    data = {"event": kind, **extra}
    if metric is not None:
        data["metric"] = metric.name
    if window is not None:
        data["start"] = window.start.isoformat()
        data["end"] = window.end.isoformat()
    return data


def compute_plan(config, plan: Plan, *, trigger: str, store: Store, clock: Clock,
                 should_stop: Callable[[], bool], emit: Callable[[dict], None]) -> None:
    """Compute the plan one window at a time, emitting start/done events; stops between windows.

    After a metric's first failure its later windows are skipped (they would
    fail the same way), as :func:`monitor.pipeline.compute` does.
    """
    from monitor.pipeline import compute

    broken: dict[str, str] = {}
    for metric, window in plan:
        if should_stop():
            emit(_event("finished", stopped=True))
            return
        if metric.name in broken:
            emit(_event("done", metric, window, ok=False, rows=0,
                        error=f"skipped after earlier failure: {broken[metric.name]}"))
            continue
        emit(_event("start", metric, window))
        try:
            result = compute(config, [(metric, window)], trigger=trigger, store=store, clock=clock)
        except Exception as exc:  # noqa: BLE001 - a bug or an unexpected driver error fails this metric only
            error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            log.exception("%s failed for %s", metric.name, window)
            _record_failure(store, metric, window, error, trigger=trigger, clock=clock)
            broken[metric.name] = error
            emit(_event("done", metric, window, ok=False, rows=0, error=error))
            continue
        if result.failures:
            error = result.failures[0][2]
            broken[metric.name] = error
            emit(_event("done", metric, window, ok=False, rows=0, error=error))
        else:
            emit(_event("done", metric, window, ok=True, rows=result.rows))
    emit(_event("finished", stopped=False))


def _record_failure(store: Store, metric: Metric, window: Window, error: str, *, trigger: str, clock: Clock) -> None:
    try:
        now = clock()
        store.record_failure(metric, window, error, trigger=trigger, started_at=now, now=now)
    except Exception as exc:  # noqa: BLE001 - the failure is still reported to the caller
        log.warning("could not record the failure of %s %s in the run log: %s", metric.name, window, exc)


class InlineRunner:
    """Compute in this process. The timeout is only checked between windows (logged, not enforced)."""

    name = "inline"

    def run(self, config, plan: Plan, *, trigger: str, store: Store, clock: Clock, stop: threading.Event,
            timeout: float, grace: float, lock: WriterLock | None = None) -> RunOutcome:
        builder = _Outcome()
        begun = time.monotonic()

        def emit(data: dict) -> None:
            builder.event(data)
            if data["event"] == "done" and time.monotonic() - builder.started_at > timeout:
                log.warning("%s %s took longer than the %s s timeout (inline runs cannot be interrupted)",
                            data["metric"], data["start"], timeout)

        compute_plan(config, plan, trigger=trigger, store=store, clock=clock, should_stop=stop.is_set, emit=emit)
        builder.outcome.seconds = time.monotonic() - begun
        return builder.outcome


class ProcessRunner:
    """Compute in a child process with a hard per-window timeout (see the module doc)."""

    name = "process"

    def __init__(self, python: str | None = None):
        self.python = python or sys.executable

    def run(self, config, plan: Plan, *, trigger: str, store: Store, clock: Clock, stop: threading.Event,
            timeout: float, grace: float, lock: WriterLock | None = None) -> RunOutcome:
        if stop.is_set():
            return RunOutcome(stopped=True)
        builder = _Outcome()
        begun = time.monotonic()
        order = {"config": config, "plan": plan, "trigger": trigger, "store_path": str(store.path),
                 "clock_offset": (clock() - utc_naive()).total_seconds(), "timeout": timeout}
        read_fd, write_fd = os.pipe()
        keep = [write_fd] + ([lock.fileno()] if lock is not None else [])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH")) if p)
        try:
            proc = subprocess.Popen([self.python, "-m", "monitor.scheduler.worker", str(write_fd)],
                                    stdin=subprocess.PIPE, pass_fds=keep, env=env)
        finally:
            os.close(write_fd)
        try:
            proc.stdin.write(pickle.dumps(order))
            proc.stdin.close()
        except BrokenPipeError:
            pass  # it died at once: reported below from its exit code
        killed_for, stop_sent = self._follow(proc, read_fd, builder, stop, timeout, grace)
        os.close(read_fd)
        code = proc.wait()
        outcome = builder.outcome
        if builder.in_progress is not None:
            metric, window = builder.in_progress
            if killed_for == "timeout":
                outcome.timed_out = True
                error = f"timed out after {timeout:g} s computing {window}; the window was rolled back"
            elif killed_for == "shutdown":
                error = None  # interrupted by shutdown: not a failure, it is due again next time
                outcome.stopped = True
            else:
                error = f"run worker died ({_describe_exit(code)}) computing {window}; the window was rolled back"
                outcome.crashed = error
            if error:
                outcome.failures.append((metric, window, error))
                metric_obj = next(m for m, _ in plan if m.name == metric)
                _record_failure(store, metric_obj, window, error, trigger=trigger, clock=clock)
                _skip_rest(outcome, plan, metric, window, error)
        elif stop_sent and not _finished(outcome, plan):
            outcome.stopped = True  # asked to stop between windows (or before the first one)
        elif code != 0 and not killed_for and not outcome.stopped and not _finished(outcome, plan):
            outcome.crashed = f"run worker exited ({_describe_exit(code)}) before finishing its plan"
        outcome.seconds = time.monotonic() - begun
        return outcome

    def _follow(self, proc, read_fd: int, builder: _Outcome, stop: threading.Event, timeout: float,
                grace: float) -> tuple[str | None, bool]:
        """Read events until the worker closes its pipe; kill it on timeout or after the shutdown grace.

        Returns why it was killed ("timeout", "shutdown" or None) and whether a stop was passed on.
        """
        selector = selectors.DefaultSelector()
        selector.register(read_fd, selectors.EVENT_READ)
        buffer = b""
        killed_for = None
        stop_deadline = None
        try:
            while True:
                if selector.select(timeout=0.1):
                    chunk = os.read(read_fd, 65536)
                    if not chunk:
                        return killed_for, stop_deadline is not None
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        if line.strip():
                            builder.event(json.loads(line))
                if killed_for:
                    continue
                now = time.monotonic()
                if stop.is_set() and stop_deadline is None:
                    stop_deadline = now + grace
                    _signal(proc, signal.SIGTERM)  # finish the window in progress, then stop
                if stop_deadline is not None and now > stop_deadline:
                    log.warning("shutdown: the window in progress did not finish within %s s; killing it "
                                "(it rolls back and runs again next time)", grace)
                    killed_for = "shutdown"
                    _signal(proc, signal.SIGKILL)
                elif builder.in_progress is not None and now - builder.started_at > timeout:
                    killed_for = "timeout"
                    _signal(proc, signal.SIGKILL)
        finally:
            selector.close()


def _signal(proc, sig: int) -> None:
    try:
        proc.send_signal(sig)
    except ProcessLookupError:
        pass


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _finished(outcome: RunOutcome, plan: Plan) -> bool:
    return len(outcome.done) + len(outcome.failures) >= len(plan)


def _skip_rest(outcome: RunOutcome, plan: Plan, metric: str, window: Window, error: str) -> None:
    seen = {(m, w) for m, w in outcome.done} | {(m, w) for m, w, _ in outcome.failures}
    for m, w in plan:
        if m.name == metric and w > window and (m.name, w) not in seen:
            outcome.failures.append((m.name, w, f"skipped after earlier failure: {error}"))


RUNNERS = {"process": ProcessRunner, "inline": InlineRunner}


def make_runner(name: str):
    try:
        return RUNNERS[name]()
    except KeyError:
        from monitor.errors import ConfigError

        raise ConfigError(f"Unknown [scheduler] isolation {name!r}; valid: {', '.join(sorted(RUNNERS))}.") from None
