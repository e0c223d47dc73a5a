"""The two records of the events step: an event, and its link to an incident."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from monitor.errors import MonitorError
from monitor.slices import slice_label


@dataclass(frozen=True)
class Event:
    """One change of ours: a rule, a model rollout, a promotion, a deploy...

    ``scope`` narrows it to segments (``{"payment_method": "card"}``; empty = everywhere);
    ``metrics`` names the metrics it is about (empty = any). ``end_ts`` makes it a window
    (a promotion), else it is a moment. ``expected``: inside its window, the named metrics
    are expected to move and do not page.
    """

    event_id: str
    source: str  # 'file:<name>' or 'cli'
    kind: str
    title: str
    ts: dt.datetime
    end_ts: dt.datetime | None = None
    url: str | None = None
    scope: dict[str, str] = field(default_factory=dict)
    metrics: tuple[str, ...] = ()
    expected: bool = False
    author: str = ""

    @property
    def scope_label(self) -> str:
        return slice_label(self.scope)

    def to_dict(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "source": self.source, "kind": self.kind, "title": self.title,
                "ts": self.ts, "end_ts": self.end_ts, "url": self.url, "scope": dict(self.scope),
                "metrics": list(self.metrics), "expected": self.expected, "author": self.author}


def stable_event_id(source: str, kind: str, title: str, ts: dt.datetime, scope: dict[str, str]) -> str:
    """The same row of an event file gets the same id on every cycle (links stay put)."""
    raw = "\x1f".join([source, kind, title, ts.isoformat(), json.dumps(scope, sort_keys=True)])
    return "ev-" + hashlib.sha256(raw.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Link:
    """An incident linked to an event: how well the scope matches, how long before it came.

    ``score`` in (0, 1], higher = more likely the cause: scope quality (1 = the incident's own
    slice is the event's scope; a top cause scores a little less; an unscoped event 0.5)
    times time closeness (1 within the incident's first bucket or inside the event's
    window, falling linearly to 0.5 at the edge of the link window).
    """

    incident_id: str
    event_id: str
    score: float
    scope_match: str  # slice | cause | everywhere | slice below (through a slice incident under a total)
    matched: dict[str, str]  # the incident segment that matched the scope
    lag: dt.timedelta  # incident start - event time (negative: the event came within the first bucket)
    during: bool  # the incident started inside the event's window
    expected: bool  # an expected event, for this incident's metric, that it started inside

    def to_row(self, now: dt.datetime) -> list[Any]:
        return [self.incident_id, self.event_id, round(self.score, 4), self.scope_match,
                json.dumps(self.matched, sort_keys=True), self.lag.total_seconds(), self.during, self.expected, now]


def parse_scope(pairs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``["payment_method=card", "country=BR"]`` -> a scope; a malformed pair raises."""
    scope: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key.isidentifier() or not value:
            raise MonitorError(f"--scope {pair!r} must look like dimension=value, e.g. payment_method=card.")
        if key in scope and scope[key] != value:
            raise MonitorError(f"--scope names {key} twice ({scope[key]!r} and {value!r}); an event scope has one "
                               "value per dimension.")
        scope[key] = value
    return scope
