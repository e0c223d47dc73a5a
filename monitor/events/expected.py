"""Expected changes: an incident that started inside an expected event's window (a planned
promotion) for a metric the event names, and in its scope, does not page, like a silence
created ahead of time. It is still recorded and shown, marked expected. One still open
``grace`` after the window ended outlasted what was planned and pages after all.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from monitor.events.describe import event_phrase
from monitor.incident import Incident


def expected_reason(incident: Incident, links: list[dict[str, Any]], *, now: dt.datetime,
                    grace: dt.timedelta) -> str | None:
    """Why the incident does not page (for the alert's quiet note), or None."""
    for link in links:
        if not link.get("expected_here"):
            continue
        end = link.get("end_ts")
        still_open = incident.is_open
        if still_open and end is not None and now >= end + grace:
            continue  # outlasted the planned window: page
        return f"expected: {event_phrase(link)}"
    return None
