"""Labels of an incident and the Alertmanager-style routing tree.

Labels are what routes, grouping and silences match on. Precedence, lowest
first: the metric header's ``labels``, then slice dimensions, then the built-in
labels -- so a dimension or a header label named ``team`` cannot re-route an
alert away from the metric's declared team.
"""
from __future__ import annotations

import json
from typing import Any

from monitor.alert.config import Route
from monitor.alert.matchers import matches_all
from monitor.incident import Incident

BUILTIN_LABELS = ("metric", "slice", "scope", "owner", "team", "severity", "direction", "incident_kind", "grain")


def incident_labels(incident: Incident, header: dict[str, Any] | None) -> dict[str, str]:
    """Every label of one incident, as strings ('' when unknown)."""
    header = header or {}
    labels: dict[str, str] = {}
    for key, value in (header.get("labels") or {}).items():
        labels[str(key)] = str(value)
    for key, value in incident.segment.items():
        labels[str(key)] = str(value)
    slice_ = incident.slice
    labels.update({
        "metric": incident.metric,
        "slice": slice_,
        "scope": "slice" if slice_ else "total",
        "owner": str(header.get("owner") or ""),
        "team": str(header.get("team") or ""),
        "severity": str(incident.severity or header.get("severity") or ""),
        "direction": str(incident.direction or ""),
        "incident_kind": str(incident.kind or ""),
        "grain": str(header.get("grain") or ""),
    })
    return labels


def route_alert(root: Route, labels: dict[str, str]) -> list[Route]:
    """Every route that handles an alert: the Alertmanager walk from the root.

    One addition to Alertmanager (which rejects ``continue`` on the root):
    ``continue = true`` on the root route means its receiver gets every alert,
    in addition to the child routes that match -- a catch-all log or console.
    """
    found = match_routes(root, labels)
    if root.continue_ and root not in found:
        found = [root, *found]
    return found


def match_routes(route: Route, labels: dict[str, str]) -> list[Route]:
    """The routes (leaves of the walk) that handle an alert with these labels.

    Alertmanager's walk: children are tried in order; the first that matches
    handles the alert (recursively) and the walk stops unless it has
    ``continue = true``. A node whose children all miss handles it itself. The
    root matches everything, so every alert has at least the default route.
    """
    if not matches_all(route.matchers, labels):
        return []
    found: list[Route] = []
    for child in route.routes:
        hit = match_routes(child, labels)
        if hit:
            found.extend(hit)
            if not child.continue_:
                break
    return found or [route]


def group_labels(route: Route, labels: dict[str, str]) -> dict[str, str]:
    """The labels that define the alert's group under this route ('...' = every label)."""
    if route.group_by is None:
        return dict(sorted(labels.items()))
    return {k: labels.get(k, "") for k in route.group_by}


def group_key(route: Route, labels: dict[str, str]) -> str:
    """Stable key of a group: the route that made it plus its group labels."""
    values = group_labels(route, labels)
    return f"{route.path}:{json.dumps(values, sort_keys=True, separators=(',', ':'))}"
