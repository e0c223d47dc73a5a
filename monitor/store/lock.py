"""One writer at a time: an OS file lock (``flock``) on ``<store>.lock``.

Every process that computes windows into a store (``serve``, ``run``,
``backfill``) holds this lock for its cycle, so two of them never run the same
window at once. Readers (dashboard, ``status``, ``incidents``) never take it:
they open the DuckDB file read-only with short-lived connections.

The lock belongs to the open file, not to the process: the kernel releases it
when the holder exits, however it exits (``kill -9`` included), so a crash
never leaves a stale lock behind. A child process that inherits the file
descriptor (the scheduler's run worker) keeps it held even if its parent dies,
so an orphaned run can never overlap with the next one.

Within one process the lock is re-entrant for the thread that holds it (a
``serve`` cycle can call code that takes it again) and exclusive between
threads.
"""
from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from monitor.clock import utc_naive
from monitor.errors import MonitorError


class LockTimeout(MonitorError):
    """The writer lock was not free within the wait; ``holder`` says who has it (may be None)."""

    def __init__(self, message: str, *, holder: dict | None = None):
        super().__init__(message)
        self.holder = holder


@dataclass
class WriterLock:
    """The held lock: the file descriptor (to hand to a child process) and what we wrote in it."""

    path: Path
    fd: int
    info: dict

    def fileno(self) -> int:
        return self.fd


class _Held:
    def __init__(self) -> None:
        self.mutex = threading.RLock()
        self.depth = 0
        self.lock: WriterLock | None = None


_registry: dict[str, _Held] = {}
_registry_guard = threading.Lock()


def lock_path(store_path: Path | str) -> Path:
    store_path = Path(store_path)
    return store_path.with_name(store_path.name + ".lock")


def _held_for(path: Path) -> _Held:
    key = os.path.realpath(path)
    with _registry_guard:
        return _registry.setdefault(key, _Held())


@contextmanager
def writer_lock(store_path: Path | str, *, wait: float | None, purpose: str = "",
                cancel: Callable[[], bool] | None = None) -> Iterator[WriterLock]:
    """Hold the store's writer lock for the block.

    ``wait``: seconds to wait for another holder (0 = fail at once, None =
    wait forever); raises :class:`LockTimeout` naming the holder when it is
    not free in time. ``purpose`` is recorded for ``monitor status`` and for
    the message another waiter gets. ``cancel``: checked while waiting; when
    it returns True the wait ends with :class:`LockTimeout` (shutdown).
    """
    path = lock_path(store_path)
    held = _held_for(path)
    deadline = None if wait is None else time.monotonic() + wait
    if not held.mutex.acquire(timeout=-1 if wait is None else max(wait, 0.0)):
        raise _timeout(path, wait, read_holder(store_path))
    try:
        if held.depth == 0:
            held.lock = _acquire(path, deadline, wait, purpose, cancel)
        held.depth += 1
        try:
            yield held.lock
        finally:
            held.depth -= 1
            if held.depth == 0:
                _release(held.lock)
                held.lock = None
    finally:
        held.mutex.release()


def _acquire(path: Path, deadline: float | None, wait: float | None, purpose: str,
             cancel: Callable[[], bool] | None) -> WriterLock:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    delay = 0.01
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise _timeout(path, wait, _read_info(path)) from None
                if cancel is not None and cancel():
                    raise LockTimeout(f"Stopped waiting for the writer lock {path} (cancelled).",
                                      holder=_read_info(path)) from None
                time.sleep(delay if deadline is None else min(delay, max(deadline - time.monotonic(), 0.001)))
                delay = min(delay * 2, 0.2)
    except BaseException:
        os.close(fd)
        raise
    info = {"pid": os.getpid(), "host": socket.gethostname(), "purpose": purpose,
            "since": utc_naive().isoformat(timespec="seconds")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    return WriterLock(path, fd, info)


def _release(lock: WriterLock | None) -> None:
    if lock is None:
        return
    try:
        os.ftruncate(lock.fd, 0)
        fcntl.flock(lock.fd, fcntl.LOCK_UN)
    finally:
        os.close(lock.fd)


def _timeout(path: Path, wait: float | None, holder: dict | None) -> LockTimeout:
    who = describe_holder(holder)
    waited = "" if wait is None else f" after waiting {wait:g} s"
    return LockTimeout(f"The store's writer lock {path} is held by {who}; gave up{waited} "
                       "(another serve, run or backfill is writing: try again when it is done).",
                       holder=holder)


def describe_holder(holder: dict | None) -> str:
    if not holder:
        return "another process"
    text = f"pid {holder.get('pid')} on {holder.get('host')}"
    if holder.get("purpose"):
        text += f" ({holder['purpose']})"
    if holder.get("since"):
        text += f" since {holder['since']} UTC"
    return text


def _read_info(path: Path) -> dict | None:
    try:
        text = path.read_text()
    except OSError:
        return None
    try:
        return json.loads(text) if text.strip() else None
    except ValueError:
        return None


def read_holder(store_path: Path | str) -> dict | None:
    """Who holds the writer lock now (pid, host, purpose, since), or None when it is free.

    Probes with a non-blocking shared lock, so it never waits and never
    mistakes the leftover text of a crashed holder for a live one.
    """
    path = lock_path(store_path)
    if not path.exists():
        return None
    held = _registry.get(os.path.realpath(path))
    if held is not None and held.lock is not None:
        return dict(held.lock.info)  # this process holds it
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_info(path) or {}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
