"""Linked events on incidents, for the surfaces that read incidents (alerts).

Sets ``events`` (the links, best first) and ``expected_by`` (why it does not page, or None)
on each incident, reading the links stored by the last cycle.
"""
from __future__ import annotations

import dataclasses
import datetime as dt

from monitor.errors import MonitorError
from monitor.events.expected import expected_reason
from monitor.events.settings import load_event_settings
from monitor.events.store import read_links
from monitor.incident import Incident


def attach_events(con, config, incidents: list[Incident], *, now: dt.datetime) -> list[Incident]:
    links = read_links(con, [i.incident_id for i in incidents]) if incidents else {}
    if not links:
        return list(incidents)
    grace = dt.timedelta(days=1)
    if hasattr(config, "section"):
        try:
            grace = load_event_settings(config).expected_grace
        except MonitorError:  # a bad [events] section is reported by the cycle; alerts still go out
            pass
    out = []
    for incident in incidents:
        mine = links.get(incident.incident_id, [])
        out.append(dataclasses.replace(incident, events=tuple(mine),
                                       expected_by=expected_reason(incident, mine, now=now, grace=grace)))
    return out
