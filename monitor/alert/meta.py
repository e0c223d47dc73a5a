"""Meta-alerts: problems with the toolkit itself, sent to the toolkit's owner.

A metric that keeps failing, a broken edit of a metric file, a source that
stopped receiving data, a writer lock held for too long: none of these is an
incident about a metric's values, and none should page the metric's owner as
one. Each is a :class:`MetaAlert`, kept in the ``meta_alerts`` table (one open
row per key, so a problem that persists for a week is one alert, not 300) and,
when ``[scheduler] owner_receiver`` names an ``[alerts]`` receiver, queued in
the alert outbox in the same transaction, so the alert module delivers it with
its retries and ordering (a "resolved" never overtakes its "firing").
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from monitor.errors import ConfigError
from monitor.store import Store

log = logging.getLogger(__name__)

# kind -> (severity, title shown in the notification)
KINDS = {
    "metric_failing": ("high", "Metric run failing"),
    "broken_definition": ("high", "Broken metric file"),
    "stale_data": ("high", "Source data stale"),
    "writer_busy": ("medium", "Store writer lock busy"),
    "analysis_failing": ("high", "Detection or alerting failing"),
    "job_failing": ("medium", "Scheduled job failing"),
    "alert_lost": ("high", "Alerts lost"),  # raised by monitor.alert.lost
}


@dataclass(frozen=True)
class MetaAlert:
    """One problem with the toolkit. ``subject`` is the metric name (or the metric file)."""

    kind: str
    subject: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown meta-alert kind {self.kind!r}; valid kinds: {', '.join(KINDS)}")

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.subject}"

    @property
    def severity(self) -> str:
        return KINDS[self.kind][0]


def meta_alert(kind: str, subject: str, message: str, **details: Any) -> MetaAlert:
    """A meta-alert record, e.g. ``meta_alert("stale_data", "fraud_rate", "...", empty_buckets=3)``."""
    return MetaAlert(kind, subject, message, dict(details))


class MetaAlerts:
    """The meta_alerts table plus delivery to the owner's receiver.

    ``receiver``: the ``[alerts]`` receiver name, or None to only store and log.
    ``repeat``: seconds after which a still-open alert is sent again.
    """

    def __init__(self, store: Store, config=None, *, receiver: str | None = None, repeat: float = 86400.0):
        self.store = store
        self.config = config
        self.receiver = receiver
        self.repeat = dt.timedelta(seconds=repeat)
        self._alert_config = None
        self._queued = False
        self._open: set[str] | None = None  # keys known open; None = unknown (ask the store)
        if receiver is not None:
            self._alert_config = _owner_alert_config(config, receiver)

    # -- raise / resolve ---------------------------------------------------------------------
    def raise_(self, alert: MetaAlert, now: dt.datetime) -> bool:
        """Open (or refresh) the alert; returns True when a message was queued for the owner."""
        details = json.dumps(alert.details, sort_keys=True, default=str)
        with self.store.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                row = con.execute("SELECT alert_id, notified_at, first_seen, occurrences FROM meta_alerts"
                                  " WHERE key = ? AND status = 'open'", [alert.key]).fetchone()
                if row is None:
                    alert_id = con.execute(
                        "INSERT INTO meta_alerts (key, kind, subject, severity, message, details_json, status,"
                        " first_seen, last_seen, occurrences) VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?, 1)"
                        " RETURNING alert_id",
                        [alert.key, alert.kind, alert.subject, alert.severity, alert.message, details, now, now],
                    ).fetchone()[0]
                    first_seen, occurrences, reason = now, 1, "new"
                    log.warning("meta-alert %s: %s", alert.key, alert.message)
                else:
                    alert_id, notified_at, first_seen, occurrences = row
                    occurrences += 1
                    con.execute("UPDATE meta_alerts SET message = ?, details_json = ?, last_seen = ?,"
                                " occurrences = ? WHERE alert_id = ?",
                                [alert.message, details, now, occurrences, alert_id])
                    due = notified_at is None or now - notified_at >= self.repeat
                    reason = ("new" if notified_at is None else "repeat") if due else None
                queued = False
                if self._open is not None:
                    self._open.add(alert.key)
                if reason and self._alert_config is not None:
                    self._enqueue(con, alert_id, alert, reason, first_seen, occurrences, now)
                    con.execute("UPDATE meta_alerts SET notified_at = ? WHERE alert_id = ?", [now, alert_id])
                    queued = True
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return queued

    def resolve(self, kind: str, subject: str, now: dt.datetime, *, resolution: str) -> bool:
        """Close the open alert of this key, if any; returns True when one was open."""
        key = f"{kind}:{subject}"
        if not self.store.path.exists() or (self._open is not None and key not in self._open):
            return False
        with self.store.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                row = con.execute("SELECT alert_id, message, details_json, first_seen, occurrences, notified_at"
                                  " FROM meta_alerts WHERE key = ? AND status = 'open'", [key]).fetchone()
                if row is None:
                    con.execute("COMMIT")
                    return False
                alert_id, message, details, first_seen, occurrences, notified_at = row
                con.execute("UPDATE meta_alerts SET status = 'resolved', resolved_at = ?, resolution = ?"
                            " WHERE alert_id = ?", [now, resolution, alert_id])
                if self._open is not None:
                    self._open.discard(key)
                if notified_at is not None and self._alert_config is not None:
                    alert = MetaAlert(kind, subject, resolution, json.loads(details))
                    self._enqueue(con, alert_id, alert, "resolved", first_seen, occurrences, now)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        log.warning("meta-alert %s resolved: %s", key, resolution)
        return True

    def refresh(self) -> set[str]:
        """Re-read which alerts are open (one read-only query), so resolving a closed one costs nothing."""
        self._open = {a["key"] for a in open_meta_alerts(self.store)}
        return set(self._open)

    # -- delivery ----------------------------------------------------------------------------
    def _enqueue(self, con, alert_id: int, alert: MetaAlert, reason: str, first_seen: dt.datetime,
                 occurrences: int, now: dt.datetime) -> None:
        from monitor.alert.planner import PlannedMessage
        from monitor.alert.outbox import enqueue

        message = build_meta_message(alert, receiver=self.receiver, reason=reason, alert_id=alert_id,
                                     first_seen=first_seen, occurrences=occurrences, now=now,
                                     project=getattr(self.config, "name", ""),
                                     dashboard_url=self._alert_config.dashboard_url)
        planned = PlannedMessage(receiver=self.receiver, group_key=f"meta/{alert.key}", reason=reason,
                                 message=message, incident_ids=())
        enqueue(con, [planned], self._alert_config, now=now)
        self._queued = True

    def flush(self, now: dt.datetime) -> None:
        """Deliver what was queued (the alert module's outbox retries what does not go out)."""
        if not self._queued or self._alert_config is None:
            return
        from monitor.alert.outbox import flush_outbox

        self._queued = False
        try:
            result = flush_outbox(self.store, self._alert_config, now=now)
        except Exception as exc:  # noqa: BLE001 - delivery trouble must not stop the scheduler
            log.warning("could not deliver meta-alerts now (the outbox retries): %s", exc)
            return
        for problem in getattr(result, "problems", []) or []:
            log.warning("meta-alert delivery: %s", problem)


def build_meta_message(alert: MetaAlert, *, receiver: str, reason: str, alert_id: int, first_seen: dt.datetime,
                       occurrences: int, now: dt.datetime, project: str = "",
                       dashboard_url: str | None = None) -> dict[str, Any]:
    """The notification in the alert module's message schema, with ``kind: "meta"`` on the entry."""
    from monitor.alert.message import build_message

    severity, title = KINDS[alert.kind]
    status = "resolved" if reason == "resolved" else "firing"
    entry = {
        "kind": "meta",
        "meta_kind": alert.kind,
        "fingerprint": f"meta-{alert_id}",
        "incident_id": f"meta-{alert_id}",
        "status": status,
        "resolution": alert.message if status == "resolved" else None,
        "metric": alert.subject,
        "title": f"{title}: {alert.subject}",
        "slice": "",
        "segment": {},
        "direction": None,
        "severity": severity,
        "start_ts": first_seen.isoformat(),
        "end_ts": now.isoformat() if status == "resolved" else None,
        "last_ts": now.isoformat(),
        "baseline": None, "observed": None, "relative_change": None, "score": None,
        "metric_kind": None, "unit": "", "grain": None,
        "owner": receiver, "team": None, "runbook": None,
        "labels": {"alertname": "monitor_meta", "meta_kind": alert.kind, "subject": alert.subject,
                   "project": project, "severity": severity},
        "links": {},
        "explanation": None,
        "quiet": None,
        "text": alert.message,
        "details": alert.details,
        "occurrences": occurrences,
    }
    message = build_message(receiver=receiver, group_key=f"meta/{alert.key}", group_labels=dict(entry["labels"]),
                            reason=reason, firing=[entry] if status == "firing" else [],
                            resolved=[entry] if status == "resolved" else [], created_at=now,
                            dashboard_url=dashboard_url)
    tag = {"new": "META", "repeat": "META STILL FIRING", "resolved": "META RESOLVED"}[reason]
    message["summary"] = f"[{tag}] {title}: {alert.message}"
    return message


def _owner_alert_config(config, receiver: str):
    """The validated [alerts] config, checking that the owner's receiver exists."""
    from monitor.alert.config import load_alert_config

    alert_config = load_alert_config(config)
    if receiver not in alert_config.receivers:
        known = ", ".join(sorted(alert_config.receivers)) or "none"
        raise ConfigError(f"[scheduler] owner_receiver {receiver!r} is not an [alerts] receiver; "
                          f"valid receivers: {known}.")
    return alert_config


def open_meta_alerts(store: Store) -> list[dict[str, Any]]:
    """Open meta-alerts, newest first (read-only; [] before the store exists)."""
    return _select(store, "WHERE status = 'open' ORDER BY last_seen DESC")


def meta_alert_history(store: Store, *, limit: int = 100) -> list[dict[str, Any]]:
    return _select(store, "ORDER BY alert_id DESC LIMIT ?", [limit])


def _select(store: Store, tail: str, params: list | None = None) -> list[dict[str, Any]]:
    if not store.path.exists():
        return []
    with store.connect(read_only=True) as con:
        cursor = con.execute(f"SELECT * FROM meta_alerts {tail}", params or [])
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, r)) for r in cursor.fetchall()]
    for row in rows:
        row["details"] = json.loads(row.pop("details_json") or "{}")
    return rows
