"""Helpers for the alert tests: a real store file with incidents written by plain SQL."""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

from monitor.alert.config import AlertConfig, parse_alert_config
from monitor.alert.notifiers import SENT, Delivery, Notifier
from monitor.incident import Incident, incident_id  # the ids detection writes (12 hex characters)
from monitor.store import Store, slice_label

T0 = dt.datetime(2026, 3, 4, 6, 10)
HEADERS = {
    "fraud_rate": {"title": "Confirmed fraud rate of orders", "owner": "risk-oncall", "team": "payments",
                   "runbook": "https://wiki.example.com/runbooks/fraud-rate", "severity": "high",
                   "labels": {"domain": "fraud"}, "unit": "percent", "kind": "ratio", "grain": "day",
                   "dimensions": ["country", "channel"]},
    "signup_count": {"title": "Fake signups", "owner": "growth-risk", "team": "identity", "runbook": "",
                     "severity": "medium", "labels": {}, "unit": "count", "kind": "sum", "grain": "hour",
                     "dimensions": ["country"]},
}
EXPLANATION = {  # the shape of monitor.attribute.explain.Explanation.to_dict()
    "kind": "ratio", "baseline_label": "same weekday, mean of the 4 weeks before", "metric_label": "metric",
    "before": 0.012, "after": 0.017, "change": 0.005, "relative_change": 0.4167, "dimensions": [],
    "split": {"dimension": "country", "mix": 0.0005, "rate": 0.0045, "interaction": 0.0, "rate_se": None},
    "verdict": "rate",
    "causes": [
        {"segment": {"country": "BR"}, "explained_share": 0.62, "size": 0.12, "before": 0.011, "after": 0.034,
         "change_type": "rate"},
        {"segment": {"channel": "web"}, "explained_share": 0.21, "size": 0.4, "before": 0.010, "after": 0.014,
         "change_type": "rate"},
    ],
}


def make_store(tmp_path) -> Store:
    store = Store(tmp_path / "store.duckdb", lock_wait=5)
    with store.connect() as con:
        for name, header in HEADERS.items():
            con.execute("INSERT INTO metric_definitions VALUES (?, 'h', ?, ?, ?, ?, NULL, ?)",
                        [name, header["kind"], header["grain"], header["dimensions"], json.dumps(header), T0])
    return store


def incident_row(metric: str = "fraud_rate", segment: dict[str, str] | None = None, *,
                 start: dt.datetime = T0 - dt.timedelta(days=2), parent: dict | None = None,
                 direction: str = "up", baseline: float = 0.012, observed: float = 0.017,
                 severity: str | None = None, explanation: dict | None = None, score: float = 5.0,
                 **extra: Any) -> dict[str, Any]:
    """One row of the incidents table, as detection writes it."""
    segment = segment or {}
    label = slice_label(segment)
    row = {
        "incident_id": incident_id(metric, label, start), "metric": metric, "slice": label,
        "slice_json": json.dumps(segment, sort_keys=True), "parent_id": parent["incident_id"] if parent else None,
        "start_ts": start, "end_ts": None, "last_ts": T0 - dt.timedelta(days=1), "direction": direction,
        "kind": "level_shift", "baseline": baseline, "observed": observed,
        "relative_change": (observed - baseline) / baseline, "score": score,
        "severity": severity or HEADERS.get(metric, {}).get("severity", "medium"), "status": "open",
        "resolution": None, "why_json": "{}", "explanation_json": json.dumps(explanation) if explanation else None,
        "created_at": start, "updated_at": start,
    }
    row.update(extra)
    return row


def add_incident(store: Store, metric: str = "fraud_rate", segment: dict[str, str] | None = None,
                 **fields: Any) -> dict[str, Any]:
    """Write one incident row into the store with plain SQL."""
    row = incident_row(metric, segment, **fields)
    cols = ", ".join(row)
    with store.connect() as con:
        con.execute(f"INSERT INTO incidents ({cols}) VALUES ({', '.join('?' for _ in row)})", list(row.values()))
    return row


def update_incident(store: Store, incident: dict, **values: Any) -> None:
    sets = ", ".join(f"{k} = ?" for k in values)
    with store.connect() as con:
        con.execute(f"UPDATE incidents SET {sets} WHERE incident_id = ?", [*values.values(), incident["incident_id"]])


def resolve(store: Store, incident: dict, *, at: dt.datetime, resolution: str = "recovered") -> None:
    update_incident(store, incident, status="resolved", resolution=resolution, end_ts=at)


def config(receivers: list[dict] | None = None, **settings: Any) -> AlertConfig:
    section = {"receivers": receivers or [{"name": "ops", "type": "console"}], **settings}
    return parse_alert_config(section, dashboard_url="http://dash.local:8501")


class Recorder(Notifier):
    """Stands in for a receiver when a test is about *what* is sent, not how."""

    type_name = "recorder"

    def __init__(self, name: str = "ops"):
        from monitor.alert.config import ReceiverConfig

        super().__init__(ReceiverConfig(name=name, type="console", send_resolved=True))
        self.messages: list[dict] = []

    def send(self, message, *, idempotency_key, now) -> Delivery:
        self.messages.append(message)
        return Delivery(SENT)

    def take(self) -> list[dict]:
        out, self.messages = self.messages, []
        return out


class Sim:
    """The engine without the store: incidents, silences and group state in memory.

    For rules that need many cycles; the store-backed path is covered in
    test_alert_planner.py's integration tests and the delivery tests.
    """

    def __init__(self, cfg: AlertConfig):
        self.cfg = cfg
        self.incidents: dict[str, dict] = {}
        self.groups: dict = {}
        self.silences: list = []

    def add(self, metric: str = "fraud_rate", segment: dict[str, str] | None = None, **fields: Any) -> dict:
        row = incident_row(metric, segment, **fields)
        self.incidents[row["incident_id"]] = row
        return row

    def update(self, incident: dict, **values: Any) -> None:
        self.incidents[incident["incident_id"]].update(values)

    def resolve(self, incident: dict, *, at: dt.datetime, resolution: str = "recovered") -> None:
        self.update(incident, status="resolved", resolution=resolution, end_ts=at)

    def silence(self, *matchers: str, start: dt.datetime, end: dt.datetime) -> None:
        from monitor.alert.matchers import parse_matcher
        from monitor.alert.silences import Silence

        self.silences.append(Silence(silence_id=f"s-{len(self.silences)}", matchers=tuple(map(parse_matcher, matchers)),
                                     author="t", comment="t", created_at=start, starts_at=start, ends_at=end))

    def step(self, now: dt.datetime) -> list[dict]:
        from monitor.alert.planner import plan_notifications, prepare_alerts

        notified = {i for state in self.groups.values() for i in state.notified.values()}
        rows = [Incident.from_row(r) for r in self.incidents.values() if r["status"] == "open" or r["incident_id"] in notified]
        prepared = prepare_alerts(rows, HEADERS, [s for s in self.silences if s.is_active(now)],
                                  inhibit_slices=self.cfg.inhibit_slices)
        plan = plan_notifications(prepared.top_level, self.groups, self.cfg, now=now)
        for state in plan.upsert:
            self.groups[(state.receiver, state.group_key)] = state
        for key in plan.delete:
            self.groups.pop(key, None)
        return [m.message for m in plan.messages]
