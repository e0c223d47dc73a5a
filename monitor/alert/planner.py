"""Alertmanager semantics, as a pure function of incidents, silences and group state.

``prepare_alerts`` turns incident rows into alerts (labels, fingerprint,
silenced / quiet / inhibited); ``plan_notifications`` decides, per
(receiver, group), whether a message is due and what it says. No I/O here: the
cycle (``monitor.alert.cycle``) reads the store, calls these and writes the plan
back in one transaction, which keeps every rule testable with plain data.

The rules (docs/alerts.md has the user-facing version):

* fingerprint: the incident id (``monitor.incident.incident_id``: metric, slice, start).
* grouping: alerts routed to one receiver with equal ``group_by`` labels form one
  group and share each message. A new group waits ``group_wait``; later changes
  (a new incident, a resolved one) go out at most every ``group_interval``.
* repeat: an unchanged group with at least one *loud* firing alert is sent
  again after ``repeat_interval`` -- not while an earlier message of the group
  is still undelivered in the outbox.
* resolved: an incident shown as firing in an earlier message and now resolved
  is listed as resolved in the group's next message (``send_resolved``).
* quiet: an incident acknowledged, or labelled ``false_alarm`` / ``expected``,
  never triggers a message (first or repeat); it still appears, marked, in
  messages its group sends for other reasons, and still gets its resolved notice.
* silence: a silenced incident is left out entirely.
* inhibition: an open slice incident whose total incident (``parent_id``) is
  open rides inside the total's alert as a child, instead of alerting itself.
"""
from __future__ import annotations

import copy
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from monitor.alert.config import AlertConfig, Route
from monitor.alert.message import alert_entry, build_message
from monitor.alert.routing import group_key, group_labels, incident_labels, route_alert
from monitor.alert.silences import Silence
from monitor.incident import Incident

QUIET_LABELS = ("false_alarm", "expected")
SEVERITY_RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1}


@dataclass
class Alert:
    incident: Incident
    header: dict[str, Any]
    labels: dict[str, str]
    fingerprint: str
    firing: bool
    quiet: str | None = None  # why it never triggers a message ("acknowledged by ana")
    silenced_by: str | None = None
    children: list["Alert"] = field(default_factory=list)

    @property
    def incident_id(self) -> str:
        return self.incident.incident_id

    @property
    def loud(self) -> bool:
        return self.firing and self.quiet is None

    def sort_key(self) -> tuple:
        return (-SEVERITY_RANK.get(self.labels.get("severity", ""), 0), not self.incident.is_total,
                -abs(self.incident.score or 0.0), self.incident_id)


@dataclass
class PreparedAlerts:
    top_level: list[Alert]
    silenced: list[str]  # incident ids
    inhibited: list[str]


def quiet_reason(incident: Incident) -> str | None:
    if incident.expected_by:  # inside a planned change's window (monitor.events.expected)
        return incident.expected_by
    if incident.acked_by:
        return f"acknowledged by {incident.acked_by}"
    if incident.label in QUIET_LABELS:
        who = f" by {incident.labelled_by}" if incident.labelled_by else ""
        return f"labelled {incident.label}{who}"
    return None


def prepare_alerts(incidents: list[Incident], headers: dict[str, dict[str, Any]], silences: list[Silence],
                   *, inhibit_slices: bool = True) -> PreparedAlerts:
    """Incident rows -> alerts: labels, silences, quiet marks, and slices nested under their total."""
    alerts: dict[str, Alert] = {}
    silenced: list[str] = []
    for incident in incidents:
        header = headers.get(incident.metric) or {}
        labels = incident_labels(incident, header)
        alert = Alert(incident=incident, header=header, labels=labels, fingerprint=incident.fingerprint,
                      firing=incident.is_open, quiet=quiet_reason(incident))
        hit = next((s for s in silences if s.matches(labels)), None)
        if hit is not None:
            alert.silenced_by = hit.silence_id
            silenced.append(alert.incident_id)
        alerts[alert.incident_id] = alert
    inhibited: list[str] = []
    top: list[Alert] = []
    for alert in alerts.values():
        parent = alerts.get(alert.incident.parent_id or "")
        if inhibit_slices and alert.firing and parent is not None and parent.firing:
            # The total speaks for its slices (even when the total itself is silenced).
            inhibited.append(alert.incident_id)
            if alert.silenced_by is None:
                parent.children.append(alert)
            continue
        if alert.silenced_by is None:
            top.append(alert)
    for alert in top:
        alert.children.sort(key=Alert.sort_key)
    return PreparedAlerts(top_level=sorted(top, key=Alert.sort_key), silenced=silenced, inhibited=inhibited)


@dataclass
class GroupState:
    receiver: str
    group_key: str
    group_labels: dict[str, str]
    first_seen_at: dt.datetime
    next_eval_at: dt.datetime
    last_notified_at: dt.datetime | None = None
    notified: dict[str, str] = field(default_factory=dict)  # fingerprint -> incident_id shown as firing
    notifications: int = 0


@dataclass(frozen=True)
class PlannedMessage:
    receiver: str
    group_key: str
    reason: str  # new | update | repeat | resolved
    message: dict[str, Any]
    incident_ids: tuple[str, ...]


@dataclass
class Plan:
    messages: list[PlannedMessage] = field(default_factory=list)
    upsert: list[GroupState] = field(default_factory=list)
    delete: list[tuple[str, str]] = field(default_factory=list)


def plan_notifications(alerts: list[Alert], groups: dict[tuple[str, str], GroupState], config: AlertConfig, *,
                       now: dt.datetime, undelivered: set[tuple[str, str]] = frozenset()) -> Plan:
    """Decide the messages due at ``now`` and the new group state (see the module doc)."""
    plan = Plan()
    if config.route is None:  # alerting not configured: nothing can be routed
        return plan
    current: dict[tuple[str, str], list[Alert]] = {}
    routes: dict[tuple[str, str], Route] = {}
    labels_of: dict[tuple[str, str], dict[str, str]] = {}
    for alert in alerts:
        for route in route_alert(config.route, alert.labels):
            key = (route.receiver, group_key(route, alert.labels))
            current.setdefault(key, []).append(alert)
            routes[key] = route
            labels_of[key] = group_labels(route, alert.labels)
    for key in sorted(set(current) | set(groups)):
        receiver_name, gkey = key
        members = current.get(key, [])
        state = copy.deepcopy(groups.get(key))  # the caller's state stays as it was; the plan has the new one
        route = routes.get(key) or _find_route(config.route, gkey.split(":", 1)[0]) or config.route
        receiver = config.receivers.get(receiver_name)
        firing = [a for a in members if a.firing]
        if state is None:
            if not any(a.loud for a in firing):
                continue  # nothing that may page: no group yet
            state = GroupState(receiver=receiver_name, group_key=gkey, group_labels=labels_of[key],
                               first_seen_at=now, next_eval_at=now + route.group_wait)
        if now < state.next_eval_at:
            if key not in groups:
                plan.upsert.append(state)  # a new group starts its group_wait
            continue
        send_resolved = receiver.send_resolved if receiver is not None else False
        resolved = [a for a in members if not a.firing and a.fingerprint in state.notified]
        new = [a for a in firing if a.loud and a.fingerprint not in state.notified]
        reason = None
        if new:
            reason = "update" if state.notified else "new"
        elif resolved and send_resolved:
            reason = "update" if firing else "resolved"
        elif (any(a.loud for a in firing) and state.last_notified_at is not None
              and now >= state.last_notified_at + route.repeat_interval and key not in undelivered):
            reason = "repeat"
        if reason is not None and receiver is not None:
            plan.messages.append(_message(receiver_name, gkey, state.group_labels, reason, firing,
                                          resolved if send_resolved else [], config, now))
            state.notified = {a.fingerprint: a.incident_id for a in firing}
            state.last_notified_at = now
            state.notifications += 1
        else:
            # Resolved without a notice, silenced, inhibited or re-routed: forget quietly.
            firing_fps = {a.fingerprint for a in firing}
            state.notified = {fp: i for fp, i in state.notified.items() if fp in firing_fps}
        state.next_eval_at = _next_tick(state.next_eval_at, route.group_interval, now)
        if firing:
            plan.upsert.append(state)
        elif key in groups:
            plan.delete.append(key)
    return plan


def _message(receiver: str, gkey: str, labels: dict[str, str], reason: str, firing: list[Alert],
             resolved: list[Alert], config: AlertConfig, now: dt.datetime) -> PlannedMessage:
    def entry(alert: Alert, *, with_children: bool) -> dict[str, Any]:
        children = [entry(c, with_children=False) for c in alert.children] if with_children else None
        return alert_entry(alert.incident, alert.header, fingerprint=alert.fingerprint, labels=alert.labels,
                           quiet=alert.quiet, dashboard_url=config.dashboard_url, top_segments=config.top_segments,
                           children=children)

    firing = sorted(firing, key=Alert.sort_key)
    message = build_message(receiver=receiver, group_key=gkey, group_labels=labels, reason=reason,
                            firing=[entry(a, with_children=True) for a in firing],
                            resolved=[entry(a, with_children=False) for a in sorted(resolved, key=Alert.sort_key)],
                            created_at=now, dashboard_url=config.dashboard_url)
    ids = [a.incident_id for a in firing] + [c.incident_id for a in firing for c in a.children]
    ids += [a.incident_id for a in resolved]
    return PlannedMessage(receiver=receiver, group_key=gkey, reason=reason, message=message, incident_ids=tuple(ids))


def _next_tick(previous: dt.datetime, interval: dt.timedelta, now: dt.datetime) -> dt.datetime:
    """The first tick after ``now`` on the group's grid (first evaluation + k * group_interval).

    A fixed grid, as in Alertmanager, so a repeat lands on time instead of drifting
    by the gap between cycles.
    """
    if interval <= dt.timedelta(0):
        return now
    steps = (now - previous) // interval + 1
    return previous + steps * interval


def _find_route(route: Route, path: str) -> Route | None:
    if route.path == path:
        return route
    for child in route.routes:
        hit = _find_route(child, path)
        if hit is not None:
            return hit
    return None


def state_to_row(state: GroupState) -> list[Any]:
    return [state.receiver, state.group_key, json.dumps(state.group_labels, sort_keys=True), state.first_seen_at,
            state.next_eval_at, state.last_notified_at, json.dumps(state.notified, sort_keys=True),
            state.notifications]


def state_from_row(row) -> GroupState:
    receiver, gkey, labels, first, next_eval, last, notified, count = row
    # Keyed by the incident id (the fingerprint); a state written when fingerprints were a
    # separate 16-character hash maps each to its incident id, so it is re-keyed exactly.
    notified = {incident: incident for incident in json.loads(notified).values()}
    return GroupState(receiver=receiver, group_key=gkey, group_labels=json.loads(labels), first_seen_at=first,
                      next_eval_at=next_eval, last_notified_at=last, notified=notified,
                      notifications=count)
