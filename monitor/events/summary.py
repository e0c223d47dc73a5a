"""Per event: which incidents it is linked to, and which of them it keeps from paging.

For `monitor demo` and the daily report: one line per event, then its best-linked incidents.
"""
from __future__ import annotations

import datetime as dt

from monitor.events.describe import describe_link, event_phrase
from monitor.events.store import read_events, read_links
from monitor.incident import Incident, read_incidents
from monitor.slices import slice_text
from monitor.store import Store


def event_lines(store: Store, *, since: dt.datetime | None = None, until: dt.datetime | None = None,
                show: int = 3) -> list[str]:
    if not store.path.exists():
        return []
    with store.connect(read_only=True) as con:
        events = read_events(con, since=since, until=until)
        links = read_links(con)
        incidents = {i.incident_id: i for i in read_incidents(con)}
    by_event: dict[str, list[tuple[dict, Incident]]] = {}
    for incident_id, mine in links.items():
        for link in mine:
            if incident_id in incidents:
                by_event.setdefault(link["event_id"], []).append((link, incidents[incident_id]))
    lines = []
    for event in events:
        hits = by_event.get(event.event_id, [])
        top = [h for h in hits if h[1].is_total or h[1].parent_id is None]  # totals and slices not under a total
        expected = [h for h in top if h[0]["expected_here"]]
        head = f"{event.kind} '{event.title}'" + (f" on {event.scope_label}" if event.scope else "")
        if not hits:
            lines.append(f"{head}: linked to no incident")
            continue
        note = f"; {len(expected)} expected, not paging" if expected else ""
        lines.append(f"{head}: linked to {len(hits)} incident(s), {len(top)} top-level{note}")
        top.sort(key=lambda h: (not h[1].is_total, -h[0]["score"], h[1].start_ts))
        for link, incident in top[:show]:
            tag = " [expected]" if link["expected_here"] else ""
            lines.append(f"  {incident.metric} {slice_text(incident.segment)} since {incident.start_ts:%Y-%m-%d %H:%M}: "
                         f"{describe_link(link)}{tag} (score {link['score']:.2f})")
    return lines


__all__ = ["event_lines", "event_phrase"]
