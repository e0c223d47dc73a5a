"""The events step of a cycle: refresh file events from the source, then link every incident.

Called by the pipeline after detection and attribution (links need the incidents' top causes),
so `monitor run`, `monitor detect`, `monitor demo` and the scheduler all link the same way.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from monitor.engine import GRAIN_STEP, make_engine
from monitor.errors import MonitorError
from monitor.events.files import load_event_sources, run_source, to_events
from monitor.events.linking import link_incidents
from monitor.events.settings import load_event_settings
from monitor.events.store import read_events, replace_links, replace_source_events
from monitor.incident import read_incidents
from monitor.store import Store

log = logging.getLogger(__name__)
# Event files are read over this range around now: history for linking, the future for planned events.
HORIZON = dt.timedelta(days=400)


@dataclass
class LinkResult:
    events: int = 0
    links: int = 0
    expected: int = 0
    problems: list[str] = field(default_factory=list)  # a broken event file: the others still count


def link_project_events(config, store: Store, *, now: dt.datetime) -> LinkResult:
    settings = load_event_settings(config)
    sources, problems = load_event_sources(settings.folder)
    result = LinkResult(problems=[str(p) for p in problems])
    fetched = {}
    if not sources and not store.path.exists():
        return result
    if sources:
        with make_engine(config.source) as engine:
            if not hasattr(engine, "connection"):
                raise MonitorError(f"event files run on the duckdb engine, not {engine.name}; "
                                   "add one-off events with `monitor event add`.")
            for source in sources:
                try:
                    table = run_source(engine.connection(), source, start=now - HORIZON, end=now + HORIZON)
                    fetched[source.source] = to_events(source, table, settings.expected_kinds)
                except MonitorError as exc:
                    log.warning("%s", exc)
                    result.problems.append(str(exc))
    with store.connect() as con:
        if not fetched and not con.execute("SELECT count(*) FROM events").fetchone()[0]:
            return result  # a project without events
        con.execute("BEGIN TRANSACTION")
        try:
            for source, events in fetched.items():
                replace_source_events(con, source, events, now)
            events = read_events(con, until=now + HORIZON)
            incidents = read_incidents(con, "start_ts <= ?", [now])
            grains = dict(con.execute("SELECT metric, grain FROM metric_definitions").fetchall())
            steps = {i.metric: GRAIN_STEP.get(grains.get(i.metric), GRAIN_STEP["day"]) for i in incidents}
            links = link_incidents(incidents, events, steps=steps, window=settings.window,
                                   after=settings.after, causes=settings.causes)
            replace_links(con, links, now)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    result.events, result.links = len(events), len(links)
    result.expected = sum(link.expected for link in links)
    return result
