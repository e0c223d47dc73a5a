"""The incident: one typed value from detection to the CLI, alerts, report and dashboard.

Detection builds an :class:`Incident` (``Incident.detected``) and writes ``to_row()``;
every surface reads rows back through :func:`read_incidents` / ``Incident.from_row``,
which decode the stored JSON (segment, why, explanation) here and nowhere else.

Ids: :func:`incident_id` is the one id of an episode (metric, slice label, start),
12 hex characters of a SHA-256. It is what stores hold today, so it must not change;
the alert fingerprint is the same id.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from monitor.attribute.explain import Explanation
from monitor.slices import slice_label

log = logging.getLogger(__name__)

# The incidents table, in its column order (sql/schema.sql).
COLUMNS = ("incident_id", "metric", "slice", "slice_json", "parent_id", "start_ts", "end_ts", "last_ts",
           "direction", "kind", "baseline", "observed", "relative_change", "score", "severity", "status",
           "resolution", "why_json", "explanation_json", "created_at", "updated_at", "acked_by", "acked_at",
           "label", "labelled_by", "labelled_at")


def incident_id(metric: str, label: str, start: dt.datetime) -> str:
    """The stable id of an episode: the same metric, slice and start always give the same id.

    >>> incident_id("fraud_rate", "country=BR", dt.datetime(2026, 3, 2))
    'd1db0bd8bab0'
    """
    raw = f"{metric}|{label}|{start.isoformat()}"
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Lead:
    """The incident of another metric whose segment this one was raised for (``detect.follows``)."""

    metric: str | None
    incident_id: str
    start: str | None
    segment: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Why:
    """What detection recorded about a finding: the detector, the lead it follows, and every
    parameter as written (``params``, shown as is by the dashboard and `monitor explain`)."""

    params: dict[str, Any] = field(default_factory=dict)

    @property
    def detector(self) -> str | None:
        return self.params.get("detector")

    @property
    def follows(self) -> Lead | None:
        lead = self.params.get("follows")
        if not isinstance(lead, dict) or not lead.get("incident_id"):
            return None
        return Lead(metric=lead.get("metric"), incident_id=lead["incident_id"], start=lead.get("start"),
                    segment=dict(lead.get("segment") or {}))

    def to_json(self) -> str:
        return json.dumps(self.params, default=_json_default, sort_keys=True)


@dataclass(frozen=True)
class Incident:
    incident_id: str
    metric: str
    segment: dict[str, str]  # {} = the total
    start_ts: dt.datetime
    end_ts: dt.datetime | None  # exclusive; None while open
    last_ts: dt.datetime
    direction: str  # up | down
    kind: str  # level_shift | spike | mix_shift
    baseline: float | None
    observed: float | None
    relative_change: float | None
    score: float
    severity: str
    status: str  # open | resolved
    resolution: str | None = None
    why: Why = field(default_factory=Why)
    explanation: Explanation | None = None
    parent_id: str | None = None
    slice: str | None = None  # the stored label; derived from the segment when not given
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    acked_by: str | None = None
    acked_at: dt.datetime | None = None
    label: str | None = None  # true_positive | false_alarm | expected
    labelled_by: str | None = None
    labelled_at: dt.datetime | None = None
    # attached when read for alerts (monitor.events): linked changes, and why it does not page
    events: tuple[dict[str, Any], ...] = ()
    expected_by: str | None = None

    def __post_init__(self):
        if self.slice is None:
            object.__setattr__(self, "slice", slice_label(self.segment))

    @classmethod
    def detected(cls, metric, segment: dict[str, str], *, start: dt.datetime, end: dt.datetime | None,
                 last_ts: dt.datetime, direction: str, kind: str, baseline: float, observed: float,
                 relative_change: float, score: float, resolution: str | None, why: dict) -> Incident:
        """A finding of detection; ``end`` None = still open, and then there is no resolution."""
        label = slice_label(segment)
        return cls(incident_id=incident_id(metric.name, label, start), metric=metric.name, segment=dict(segment),
                   slice=label, start_ts=start, end_ts=end, last_ts=last_ts, direction=direction, kind=kind,
                   baseline=finite_or_none(baseline), observed=finite_or_none(observed),
                   relative_change=finite_or_none(relative_change), score=float(score), severity=metric.severity,
                   status="open" if end is None else "resolved", resolution=None if end is None else resolution,
                   why=Why(dict(why)))

    @property
    def fingerprint(self) -> str:
        """The alert's stable identity: the incident id (one id per episode)."""
        return self.incident_id

    @property
    def is_total(self) -> bool:
        return not self.slice

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    def as_of(self, when: dt.datetime) -> Incident:
        """The incident as known at ``when``: still open if it ended later."""
        if self.end_ts is not None and self.end_ts > when:
            return dataclasses.replace(self, end_ts=None, status="open", resolution=None)
        return self

    def to_row(self) -> dict[str, Any]:
        """The incidents-table row (JSON columns encoded); the fields not set are None."""
        row = {name: getattr(self, name, None) for name in COLUMNS}
        row["slice_json"] = json.dumps(self.segment, sort_keys=True)
        row["why_json"] = self.why.to_json()
        row["explanation_json"] = (json.dumps(self.explanation.to_dict(), sort_keys=True)
                                   if self.explanation is not None else None)
        return row

    def to_json(self) -> dict[str, Any]:
        """Plain data for `--format json`: the row with its JSON decoded (segment, why, explanation)."""
        out = {k: v for k, v in self.to_row().items() if k not in ("slice_json", "why_json", "explanation_json")}
        out.update(segment=self.segment, why=self.why.params,
                   explanation=self.explanation.to_dict() if self.explanation is not None else None)
        if self.events:
            out["events"] = list(self.events)
        return out

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Incident:
        """A stored row (a mapping of column -> value; missing columns read as None)."""
        values = {k: _plain(row.get(k)) for k in COLUMNS}
        return cls(
            incident_id=values["incident_id"], metric=values["metric"], segment=_segment(values),
            slice=values["slice"] or "", parent_id=values["parent_id"], start_ts=values["start_ts"],
            end_ts=values["end_ts"], last_ts=values["last_ts"], direction=values["direction"], kind=values["kind"],
            baseline=finite_or_none(values["baseline"]), observed=finite_or_none(values["observed"]),
            relative_change=finite_or_none(values["relative_change"]), score=float(values["score"] or 0.0),
            severity=values["severity"], status=values["status"], resolution=values["resolution"],
            why=Why(_loads(values["why_json"]) or {}), explanation=decode_explanation(values["explanation_json"]),
            created_at=values["created_at"], updated_at=values["updated_at"], acked_by=values["acked_by"],
            acked_at=values["acked_at"], label=values["label"], labelled_by=values["labelled_by"],
            labelled_at=values["labelled_at"])


def read_incidents(con, where: str = "", params: list | None = None, *, order: str | None = None) -> list[Incident]:
    """Incidents from the store: ``where`` is an SQL condition on the incidents table, ``order`` an ORDER BY."""
    sql = (f"SELECT {', '.join(COLUMNS)} FROM incidents" + (f" WHERE {where}" if where else "")
           + (f" ORDER BY {order}" if order else ""))
    return [Incident.from_row(dict(zip(COLUMNS, r))) for r in con.execute(sql, params or []).fetchall()]


def read_store(store, where: str = "", params: list | None = None, *, order: str | None = None) -> list[Incident]:
    """``read_incidents`` on a short read-only connection of ``store``."""
    with store.connect(read_only=True) as con:
        return read_incidents(con, where, params, order=order)


def unexplained(store, metric: str) -> list[Incident]:
    """The metric's incidents that have no stored attribution yet."""
    return read_store(store, "metric = ? AND explanation_json IS NULL", [metric])


def decode_explanation(raw: Any) -> Explanation | None:
    """The stored attribution (``Explanation.to_dict()`` as JSON); None when missing or unreadable,
    so an incident without a readable attribution is still shown."""
    if isinstance(raw, Explanation) or raw is None:
        return raw
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
        return Explanation.from_dict(data) if data else None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        log.warning("unreadable explanation_json ignored (%s)", exc)
        return None


def finite_or_none(x) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _segment(values: dict[str, Any]) -> dict[str, str]:
    data = _loads(values["slice_json"])
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _loads(text: Any):
    if text is None or isinstance(text, dict):
        return text
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _plain(value: Any) -> Any:
    """Python values for what pandas or numpy may hand over (NaN / NaT -> None, Timestamp -> datetime)."""
    if value is None:
        return None
    if hasattr(value, "to_pydatetime"):
        try:
            return None if value != value else value.to_pydatetime()  # NaT != NaT
        except (TypeError, ValueError):
            return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _json_default(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)
