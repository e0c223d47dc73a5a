"""Linked events on the daily report's incidents: what each says, and whether it was expected."""
from __future__ import annotations

import dataclasses

from monitor.events.describe import describe_link, event_phrase
from monitor.events.store import read_links


def with_events(con, incidents: list) -> list:
    """The report's IncidentViews with ``events`` (link texts, best first) and ``expected`` filled in."""
    links = read_links(con, [i.incident_id for i in incidents]) if incidents else {}
    if not links:
        return incidents
    out = []
    for incident in incidents:
        mine = links.get(incident.incident_id, [])
        expected = next((link for link in mine if link.get("expected_here")), None)
        out.append(dataclasses.replace(
            incident, events=tuple(describe_link(link) for link in mine[:3]),
            expected=f"expected: {event_phrase(expected)}" if expected else None) if mine else incident)
    return out
