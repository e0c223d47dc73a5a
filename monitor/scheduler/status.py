"""`monitor status`: what has run, what is late, what is failing, what runs next.

Everything is read from the store (read-only, so it works while `serve`
writes), the metric files, the writer lock and the state file `serve` keeps
next to the store. Nothing here needs `serve` to be running.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import socket
from dataclasses import asdict, dataclass, field
from typing import Any

from monitor.catalog import Catalog, Metric
from monitor.engine import GRAIN_STEP, floor_to_grain
from monitor.catalog.cron import last_fire_time, next_fire_time
from monitor.store.lock import describe_holder, read_holder
from monitor.alert.meta import open_meta_alerts
from monitor.scheduler.service import state_path
from monitor.scheduler.settings import SchedulerSettings
from monitor.store.stale import staleness
from monitor.store import Store


@dataclass
class MetricStatus:
    metric: str
    schedule: str
    timezone: str
    grain: str
    state: str  # ok | lagging | failing | stale | never run
    computed_until: dt.datetime | None  # end of the last successful window
    expected_until: dt.datetime | None  # what the schedule says should be computed by now
    lag_buckets: int | None  # buckets between the two (0 = up to date)
    last_ok_run: dt.datetime | None  # when the last successful window finished
    failures: int  # failed runs since the last successful one
    last_error: str | None
    next_run: dt.datetime | None
    stale_buckets: int  # computed buckets since the source last had rows
    history_outdated: bool  # the stored history was computed with an older definition


@dataclass
class SchedulerStatus:
    now: dt.datetime
    serve: dict[str, Any]
    writer_lock: dict[str, Any] | None
    metrics: list[MetricStatus]
    problems: list[str] = field(default_factory=list)  # broken metric files
    meta_alerts: list[dict[str, Any]] = field(default_factory=list)  # open ones

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


def scheduler_status(config, catalog: Catalog, *, now: dt.datetime, store: Store | None = None,
                     settings: SchedulerSettings | None = None) -> SchedulerStatus:
    store = store or Store(config.store_path)
    settings = settings or SchedulerSettings()
    runs = _run_summary(store)
    stored = store.stored_definitions() if store.path.exists() else {}
    metrics = [_metric_status(m, runs.get(m.name, {}), stored.get(m.name), store, settings, now)
               for m in catalog.select(None)]
    return SchedulerStatus(now=now, serve=serve_state(store.path), writer_lock=read_holder(store.path),
                           metrics=metrics, problems=[str(p) for p in catalog.problems],
                           meta_alerts=open_meta_alerts(store))


def _metric_status(metric: Metric, runs: dict, stored: dict | None, store: Store, settings: SchedulerSettings,
                   now: dt.datetime) -> MetricStatus:
    step = GRAIN_STEP[metric.grain]
    fired = last_fire_time(metric.schedule, metric.timezone, now)
    expected = floor_to_grain(fired, metric.grain) if fired else None
    until = runs.get("computed_until")
    lag = None
    if until is not None and expected is not None:
        lag = max(int((expected - until) / step), 0)
    stale = staleness(store, metric, now, settings=settings) if until is not None else None
    failures = runs.get("failures", 0)
    if until is None and not failures:
        state = "never run"
    elif failures:
        state = "failing"
    elif stale is not None and stale.stale:
        state = "stale"
    elif lag:
        state = "lagging"
    else:
        state = "ok"
    return MetricStatus(
        metric=metric.name, schedule=metric.schedule, timezone=metric.timezone, grain=metric.grain, state=state,
        computed_until=until, expected_until=expected, lag_buckets=lag, last_ok_run=runs.get("last_ok_run"),
        failures=failures, last_error=runs.get("last_error"),
        next_run=next_fire_time(metric.schedule, metric.timezone, now),
        stale_buckets=stale.empty_buckets if stale is not None else 0,
        history_outdated=bool(stored and stored["hash"] != metric.definition_hash),
    )


def _run_summary(store: Store) -> dict[str, dict]:
    if not store.path.exists():
        return {}
    with store.connect(read_only=True) as con:
        rows = con.execute("""
            WITH last_ok AS (
                SELECT metric, max(run_id) AS ok_id, max(window_end) AS computed_until,
                       max(finished_at) AS last_ok_run
                FROM runs WHERE status = 'ok' GROUP BY metric),
            failed AS (
                SELECT r.metric, count(*) AS failures, arg_max(r.error, r.run_id) AS last_error
                FROM runs r LEFT JOIN last_ok l USING (metric)
                WHERE r.status = 'failed' AND r.run_id > coalesce(l.ok_id, -1) GROUP BY r.metric)
            SELECT coalesce(l.metric, f.metric), l.computed_until, l.last_ok_run, coalesce(f.failures, 0),
                   f.last_error
            FROM last_ok l FULL OUTER JOIN failed f USING (metric)
        """).fetchall()
    return {m: {"computed_until": u, "last_ok_run": r, "failures": n, "last_error": e} for m, u, r, n, e in rows}


def serve_state(store_path) -> dict[str, Any]:
    """The state file of the last `serve` on this store, with ``running`` checked against the pid."""
    path = state_path(store_path)
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"running": False, "status": "never started"}
    running = state.get("status") == "running"
    if running and state.get("host") == socket.gethostname():
        running = _pid_alive(int(state.get("pid", 0)))
    state["running"] = running
    if not running and state.get("status") == "running":
        state["status"] = "died"  # it never wrote "stopped": killed, or the machine went down
    return state


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- rendering -----------------------------------------------------------------------------------
def _ts(value: dt.datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value else "-"


def render_status(status: SchedulerStatus) -> str:
    serve = status.serve
    if serve.get("running"):
        head = f"serve: running (pid {serve.get('pid')} on {serve.get('host')}, since {serve.get('started_at')})"
    elif serve.get("status") == "died":
        head = (f"serve: NOT running (pid {serve.get('pid')} on {serve.get('host')} stopped without a clean "
                f"shutdown; last heartbeat {serve.get('heartbeat')})")
    elif serve.get("status") == "stopped":
        head = f"serve: not running (stopped cleanly; last heartbeat {serve.get('heartbeat')})"
    else:
        head = "serve: never started on this store"
    lines = [head]
    if status.writer_lock:
        lines.append(f"writer lock: held by {describe_holder(status.writer_lock)}")
    lines.append(f"all times UTC; now {_ts(status.now)}")
    lines.append("")
    header = ("METRIC", "STATE", "LAST WINDOW END", "LAG", "LAST OK RUN", "FAILURES", "NEXT RUN")
    rows = []
    for m in status.metrics:
        lag = "-" if m.lag_buckets is None else (f"{m.lag_buckets} {m.grain}(s)" if m.lag_buckets else "0")
        state = m.state + (" (history outdated)" if m.history_outdated else "")
        rows.append((m.metric, state, _ts(m.computed_until), lag, _ts(m.last_ok_run), str(m.failures),
                     _ts(m.next_run)))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    if not rows:
        lines.append("(no valid metrics)")
    errors = [(m.metric, m.last_error) for m in status.metrics if m.failures and m.last_error]
    if errors:
        lines.append("")
        lines.append("last errors:")
        lines.extend(f"  {name}: {error}" for name, error in errors)
    if status.problems:
        lines.append("")
        lines.append("broken metric files (run `monitor check`):")
        lines.extend(f"  {p}" for p in status.problems)
    if status.meta_alerts:
        lines.append("")
        lines.append("open meta-alerts:")
        for alert in status.meta_alerts:
            lines.append(f"  [{alert['kind']}] {alert['message']} (since {_ts(alert['first_seen'])}, "
                         f"seen {alert['occurrences']}x)")
    return "\n".join(lines)


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return value
