"""Linked events on incident rows, for the surfaces that read incidents (alerts).

Adds ``events`` (the links, best first) and ``expected_by`` (why it does not page, or None)
to each incident dict, reading the links stored by the last cycle.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from monitor.errors import MonitorError
from monitor.events.expected import expected_reason
from monitor.events.settings import load_event_settings
from monitor.events.store import read_links


def attach_events(con, config, incidents: list[dict[str, Any]], *, now: dt.datetime) -> None:
    links = read_links(con, [i["incident_id"] for i in incidents]) if incidents else {}
    if not links:
        return
    grace = dt.timedelta(days=1)
    if hasattr(config, "section"):
        try:
            grace = load_event_settings(config).expected_grace
        except MonitorError:  # a bad [events] section is reported by the cycle; alerts still go out
            pass
    for incident in incidents:
        mine = links.get(incident["incident_id"], [])
        incident["events"] = mine
        incident["expected_by"] = expected_reason(incident, mine, now=now, grace=grace)
