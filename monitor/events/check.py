"""`monitor check` for event files: every problem with file:line, as for metrics."""
from __future__ import annotations

from monitor.engine import make_engine
from monitor.errors import MonitorError
from monitor.events.files import check_metric_names, column_problems, load_event_sources, run_source
from monitor.events.settings import load_event_settings


def check_event_files(config, metric_names: set[str], *, dry_run: bool = True) -> tuple[int, list[str]]:
    """(number of event files, problems); the dry run runs each query and checks its columns."""
    import datetime as dt

    settings = load_event_settings(config)
    sources, problems = load_event_sources(settings.folder)
    found = [str(p) for p in problems] + [str(p) for p in check_metric_names(sources, metric_names)]
    files = len(list(settings.folder.glob("*.sql"))) if settings.folder.is_dir() else 0
    if dry_run and sources:
        with make_engine(config.source) as engine:
            if not hasattr(engine, "connection"):
                return files, found + [f"event files run on the duckdb engine, not {engine.name}"]
            probe = dt.datetime(2000, 1, 1)
            for source in sources:
                try:
                    table = run_source(engine.connection(), source, start=probe, end=probe)
                except MonitorError as exc:
                    found.append(str(exc))
                    continue
                found += column_problems(source, table.schema)
    return files, found
