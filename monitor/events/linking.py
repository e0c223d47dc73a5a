"""Which events an incident is linked to, and how strongly.

An incident starting at ``s`` (a bucket start; the bucket lasts ``step``) is linked to an event
at ``t`` when the event came at most ``window`` before it and no later than ``after`` past it
(at least its first bucket: ``s - window <= t < s + max(step, after)``; a change point's start
is an estimate, often a bucket or two early on hourly data), or when the incident started inside the event's own
window (``t <= s < end``), and the event's scope overlaps one of the incident's segments:

* its slice (``payment_method=card`` for an event scoped ``payment_method=card``), or
* its slice together with one of its top causes (a total whose change is explained by
  ``payment_method=card``), or
* anything, for an unscoped event;

and a total incident also carries the links of the slice incidents under it.

A segment overlaps a scope when they share at least one dimension and agree on every
dimension both name. An event that names metrics links only to incidents of those metrics.
"""
from __future__ import annotations

import datetime as dt
from typing import Iterable

import numpy as np

from monitor.events.model import Event, Link
from monitor.incident import Incident

SLICE_WEIGHT = 1.0
CAUSE_WEIGHTS = (0.9, 0.8, 0.7)  # the first cause, the second, the rest
EVERYWHERE_WEIGHT = 0.5
SLICE_BELOW = 0.9  # a total linked through a slice incident under it
FAR_TIME = 0.5  # time closeness at the far edge of the window


def incident_segments(incident: Incident, causes: int) -> list[tuple[str, float, dict[str, str]]]:
    """(how, weight, segment) for the incident's slice and its top causes (each within the slice)."""
    segment = incident.segment
    out = [("slice", SLICE_WEIGHT, dict(segment))]
    top = incident.explanation.causes[:causes] if incident.explanation is not None else ()
    for rank, cause in enumerate(top):
        combined = {**segment, **cause.segment}
        out.append(("cause", CAUSE_WEIGHTS[min(rank, len(CAUSE_WEIGHTS) - 1)], combined))
    return out


def scope_match(scope: dict[str, str], segments: list[tuple[str, float, dict[str, str]]]
                ) -> tuple[float, str, dict[str, str]] | None:
    """(score, how, matched segment) of the best overlap, or None when nothing overlaps.

    The score is the segment's weight times the share of the scope's dimensions it confirms:
    an event scoped ``country=BR & payment_method=card`` matched by ``country=BR`` alone
    gets half.
    """
    if not scope:
        return EVERYWHERE_WEIGHT, "everywhere", {}
    best = None
    for how, weight, segment in segments:
        shared = set(scope) & set(segment)
        if not shared or any(scope[k] != segment[k] for k in shared):
            continue
        score = weight * len(shared) / len(scope)
        if best is None or score > best[0]:
            best = (score, how, segment)
    return best


def time_closeness(lag: dt.timedelta, window: dt.timedelta, during: bool) -> float:
    """1 when the event came inside the incident's first bucket or the incident started inside
    the event's window; falling linearly to FAR_TIME at ``window`` before."""
    if during or lag <= dt.timedelta(0):
        return 1.0
    return 1.0 - (1.0 - FAR_TIME) * min(lag / window, 1.0)


def link_incidents(incidents: list[Incident], events: Iterable[Event], *, steps: dict[str, dt.timedelta],
                   window: dt.timedelta, after: dt.timedelta = dt.timedelta(0), causes: int = 3) -> list[Link]:
    """Every (incident, event) link, scored. ``steps``: bucket length per metric."""
    events = list(events)
    if not incidents or not events:
        return []
    default_step = dt.timedelta(days=1)
    start = np.array([np.datetime64(i.start_ts, "us") for i in incidents])
    step = np.array([np.timedelta64(max(steps.get(i.metric, default_step), after), "us") for i in incidents])
    ts = np.array([np.datetime64(e.ts, "us") for e in events])
    end = np.array([np.datetime64(e.end_ts or e.ts, "us") for e in events])
    win = np.timedelta64(window, "us")
    # The time test for every pair at once; scope is checked only for the few pairs left.
    near = (ts[None, :] >= start[:, None] - win) & (ts[None, :] < start[:, None] + step[:, None])
    during = (ts[None, :] <= start[:, None]) & (start[:, None] < end[None, :])
    links = []
    for i, j in zip(*np.nonzero(near | during)):
        incident, event = incidents[i], events[j]
        if event.metrics and incident.metric not in event.metrics:
            continue
        match = scope_match(event.scope, incident_segments(incident, causes))
        if match is None:
            continue
        scope_score, how, matched = match
        inside = bool(during[i, j])
        lag = incident.start_ts - event.ts
        score = scope_score * time_closeness(lag, window, inside)
        # quiet only inside the scope: a BR & app promotion does not hush BR & some seller
        within = all(matched.get(k) == v for k, v in event.scope.items())
        expected = event.expected and inside and within and bool(event.metrics) and incident.metric in event.metrics
        links.append(Link(incident_id=incident.incident_id, event_id=event.event_id, score=score,
                          scope_match=how, matched=matched, lag=lag, during=inside, expected=expected))
    links += _through_slices(incidents, links)
    links.sort(key=lambda link: (link.incident_id, -link.score, link.event_id))
    return links


def _through_slices(incidents: list[Incident], links: list[Link]) -> list[Link]:
    """A total carries the links of the slice incidents under it (``parent_id``): the alert
    speaks for them, and a total's start is often estimated earlier than its moving slice's."""
    parents = {i.incident_id: i.parent_id for i in incidents}
    direct = {(link.incident_id, link.event_id) for link in links}
    best: dict[tuple[str, str], Link] = {}
    for link in links:
        parent = parents.get(link.incident_id)
        if not parent or parent not in parents or (parent, link.event_id) in direct:
            continue
        key = (parent, link.event_id)
        if key not in best or (link.score, -len(link.matched)) > (best[key].score, -len(best[key].matched)):
            best[key] = link
    out = []
    for (parent, _), link in best.items():
        out.append(Link(incident_id=parent, event_id=link.event_id, score=link.score * SLICE_BELOW,
                        scope_match="slice below", matched=link.matched, lag=link.lag, during=link.during,
                        expected=False))  # paging is judged on the total's own start
    return out

