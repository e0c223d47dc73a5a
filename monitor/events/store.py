"""Events and their links to incidents, in the project's store.

The tables are in the store's schema (sql/events.sql), so every opened store has them.
"""
from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any, Iterable

from monitor.errors import MonitorError
from monitor.events.model import Event, Link
from monitor.store import Store
from monitor.store.store import time_filter

COLUMNS = "event_id, source, kind, title, url, ts, end_ts, scope_json, metrics, expected, author, created_at"


def _row(event: Event, now: dt.datetime) -> list[Any]:
    return [event.event_id, event.source, event.kind, event.title, event.url, event.ts, event.end_ts,
            json.dumps(event.scope, sort_keys=True), list(event.metrics), event.expected, event.author or None, now]


def add_event(store: Store, *, kind: str, title: str, at: dt.datetime, until: dt.datetime | None = None,
              scope: dict[str, str] | None = None, metrics: Iterable[str] = (), url: str | None = None,
              expected: bool = False, author: str = "", now: dt.datetime) -> Event:
    """A one-off event (`monitor event add`), kept until deleted."""
    if not kind.strip() or not title.strip():
        raise MonitorError("An event needs a --kind and a --title.")
    if until is not None and until <= at:
        raise MonitorError(f"--until {until:%Y-%m-%d %H:%M} must be after --at {at:%Y-%m-%d %H:%M}.")
    if expected and (until is None or not tuple(metrics)):
        raise MonitorError("An expected event needs a window (--until) and the metrics it keeps from paging "
                           "(--metric); otherwise it would mute nothing or everything.")
    event = Event(event_id="ev-" + uuid.uuid4().hex[:10], source="cli", kind=kind.strip(), title=title.strip(),
                  ts=at, end_ts=until, url=url or None, scope=dict(scope or {}), metrics=tuple(metrics),
                  expected=expected, author=author)
    with store.connect() as con:
        con.execute(f"INSERT INTO events ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", _row(event, now))
    return event


def replace_source_events(con, source: str, events: list[Event], now: dt.datetime) -> None:
    """The rows of one event file as its query returns them now (deleted rows disappear)."""
    con.execute("DELETE FROM events WHERE source = ?", [source])
    if events:
        con.executemany(f"INSERT OR REPLACE INTO events ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [_row(e, now) for e in events])


def read_events(con, *, since: dt.datetime | None = None, until: dt.datetime | None = None) -> list[Event]:
    """Events overlapping [since, until), oldest first."""
    where, params = time_filter(since, until, start_col="coalesce(end_ts, ts)")
    rows = con.execute(f"SELECT {COLUMNS} FROM events{where} ORDER BY ts, event_id", params).fetchall()
    return [_event(r) for r in rows]


def list_events(store: Store, **kwargs) -> list[Event]:
    if not store.path.exists():
        return []
    with store.connect(read_only=True) as con:
        return read_events(con, **kwargs)


def delete_event(store: Store, event_id: str) -> None:
    with store.connect() as con:
        row = con.execute("SELECT source FROM events WHERE event_id = ?", [event_id]).fetchone()
        if row is None:
            raise MonitorError(f"No event {event_id!r}; `monitor event list` shows the ids.")
        if row[0] != "cli":
            raise MonitorError(f"Event {event_id} comes from {row[0]}; change that event file instead.")
        con.execute("DELETE FROM incident_events WHERE event_id = ?", [event_id])
        con.execute("DELETE FROM events WHERE event_id = ?", [event_id])


def replace_links(con, links: list[Link], now: dt.datetime) -> None:
    """Links are derived from incidents and events: each cycle recomputes all of them."""
    con.execute("DELETE FROM incident_events")
    if links:
        con.executemany("INSERT INTO incident_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [link.to_row(now) for link in links])


def read_links(con, incident_ids: Iterable[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """incident_id -> its linked events (event fields + link fields), best first."""
    where, params = "", []
    if incident_ids is not None:
        where, params = " WHERE l.incident_id IN (SELECT unnest(?::VARCHAR[]))", [list(incident_ids)]
    rows = con.execute(
        "SELECT l.incident_id, l.score, l.scope_match, l.matched_json, l.lag_seconds, l.during, l.expected, "
        f"e.{COLUMNS.replace(', ', ', e.')} FROM incident_events l JOIN events e USING (event_id){where} "
        "ORDER BY l.incident_id, l.score DESC, e.ts DESC", params).fetchall()
    out: dict[str, list[dict[str, Any]]] = {}
    for incident_id, score, match, matched, lag, during, expected, *event in rows:
        entry = _event(event).to_dict()
        entry.update({"score": score, "scope_match": match, "matched": json.loads(matched),
                      "lag_seconds": lag, "during": during, "expected_here": expected})
        out.setdefault(incident_id, []).append(entry)
    return out


def links_for(store: Store, incident_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    if not store.path.exists():
        return {}
    with store.connect(read_only=True) as con:
        return read_links(con, incident_ids)


def _event(row) -> Event:
    event_id, source, kind, title, url, ts, end_ts, scope_json, metrics, expected, author, _ = row
    return Event(event_id=event_id, source=source, kind=kind, title=title, ts=ts, end_ts=end_ts, url=url,
                 scope=json.loads(scope_json), metrics=tuple(metrics or ()), expected=bool(expected),
                 author=author or "")
