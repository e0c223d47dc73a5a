"""The entry point the rest of the product calls once per cycle.

``run_alert_cycle`` reads incidents, silences and group state from the store,
plans what is due (``monitor.alert.planner``), queues it in the outbox in one
transaction, then flushes the outbox. Time is passed in (``now``), so a
scheduled run, ``monitor run --now`` and tests share one path. Calling it again
with the same ``now`` sends nothing new, so it is safe to call after every
detection run and, from the scheduler, every minute (which is what lets
``group_wait``, ``group_interval`` and retry backoffs elapse between runs).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Mapping

from monitor.alert.config import AlertConfig, load_alert_config
from monitor.alert.planner import PlannedMessage, plan_notifications, prepare_alerts, state_from_row, state_to_row
from monitor.alert.lost import describe_lost, report_lost
from monitor.alert.notifiers import Notifier
from monitor.alert.outbox import AfterSend, FlushResult, claim_head, deliver, enqueue, undelivered_rows
from monitor.alert.silences import active_silences
from monitor.clock import utc_naive
from monitor.events.attach import attach_events
from monitor.incident import Incident, read_incidents
from monitor.store import Store

log = logging.getLogger(__name__)


@dataclass
class AlertCycleResult:
    enabled: bool = True
    incidents: int = 0  # open incidents seen
    queued: list[PlannedMessage] = field(default_factory=list)
    message_ids: list[str] = field(default_factory=list)
    silenced: list[str] = field(default_factory=list)  # incident ids muted by a silence
    inhibited: list[str] = field(default_factory=list)  # slice incidents carried inside their total's alert
    flush: FlushResult = field(default_factory=FlushResult)

    @property
    def problems(self) -> list[str]:
        return self.flush.problems

    @property
    def lost(self) -> list[str]:
        """Messages this cycle failed for good (they will never arrive), one line each."""
        return describe_lost(self.flush.failed)

    def describe(self) -> str:
        """One line for `monitor run`."""
        if not self.enabled:
            return "alerts: not configured (add an [alerts] section to monitor.toml)."
        parts = [f"{len(self.queued)} message(s) queued", f"{len(self.flush.sent)} sent"]
        if self.flush.retrying:
            parts.append(f"{len(self.flush.retrying)} to retry")
        if self.flush.failed:
            parts.append(f"{len(self.flush.failed)} lost")
        if self.silenced:
            parts.append(f"{len(self.silenced)} silenced")
        return "alerts: " + ", ".join(parts) + "."


def run_alert_cycle(store: Store, config, *, now: dt.datetime,
                    metrics_headers: Mapping[str, Any] | None = None,
                    notifiers: Mapping[str, Notifier] | None = None, env: Mapping[str, str] | None = None,
                    flush: bool = True, after_send: AfterSend | None = None) -> AlertCycleResult:
    """Route, group, dedup and queue what is due at ``now``, then deliver what the outbox holds.

    ``config`` is the ProjectConfig (or an AlertConfig). ``metrics_headers``
    maps metric name to its header (dict or Metric); by default the headers
    stored with the metric definitions are used.
    """
    cfg: AlertConfig = load_alert_config(config)
    now = utc_naive(now)
    if not cfg.active:
        return AlertCycleResult(enabled=False)
    result = AlertCycleResult()
    with store.connect() as con:
        con.execute("BEGIN TRANSACTION")
        try:
            groups = {(s.receiver, s.group_key): s for s in map(state_from_row, con.execute(
                "SELECT receiver, group_key, group_labels_json, first_seen_at, next_eval_at, last_notified_at,"
                " notified_json, notifications FROM alert_groups").fetchall())}
            notified_ids = sorted({i for s in groups.values() for i in s.notified.values()})
            incidents = with_events(con, config, read_incidents(
                con, "status = 'open' OR incident_id IN (SELECT unnest(?::VARCHAR[]))", [notified_ids]),
                now=now)
            headers = _headers(con, metrics_headers)
            prepared = prepare_alerts(incidents, headers, active_silences(con, now),
                                      inhibit_slices=cfg.inhibit_slices)
            undelivered = set(con.execute("SELECT DISTINCT receiver, group_key FROM alert_outbox"
                                          " WHERE status IN ('pending', 'sending')").fetchall())
            plan = plan_notifications(prepared.top_level, groups, cfg, now=now, undelivered=undelivered)
            result.message_ids = enqueue(con, plan.messages, cfg, now=now)
            for state in plan.upsert:
                con.execute("INSERT OR REPLACE INTO alert_groups VALUES (?, ?, ?, ?, ?, ?, ?, ?)", state_to_row(state))
            for receiver, gkey in plan.delete:
                con.execute("DELETE FROM alert_groups WHERE receiver = ? AND group_key = ?", [receiver, gkey])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        # Read the outbox and claim its oldest due message here: one connection less per cycle.
        due = undelivered_rows(con) if flush else []
        preclaimed = claim_head(con, cfg, due, now=now, receivers={*cfg.receivers, *(notifiers or {})})
    result.incidents = sum(1 for i in incidents if i.is_open)
    result.queued = plan.messages
    result.silenced = prepared.silenced
    result.inhibited = prepared.inhibited
    if due:
        result.flush = deliver(store, cfg, due, now=now, notifiers=notifiers, env=env, after_send=after_send,
                               preclaimed=preclaimed)
        try:
            report_lost(store, config, result.flush, now=now)
        except Exception as exc:  # noqa: BLE001 - the loss is still in the outbox and in result.lost
            log.warning("could not record the alert_lost meta-alert: %s", exc)
    return result


def with_events(con, config, incidents: list[Incident], *, now: dt.datetime) -> list[Incident]:
    """The incidents with their linked changes and, when a planned change covers one, why it does not page."""
    return attach_events(con, config, incidents, now=now)


def _headers(con, given: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Metric headers: the ones passed in, else those stored with the metric definitions."""
    headers: dict[str, dict[str, Any]] = {}
    for metric, header_json in con.execute("SELECT metric, header_json FROM metric_definitions").fetchall():
        try:
            headers[metric] = json.loads(header_json)
        except ValueError:
            headers[metric] = {}
    for name, header in (given or {}).items():
        headers[name] = header.header_dict() if hasattr(header, "header_dict") else dict(header)
    return headers
