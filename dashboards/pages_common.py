"""What every page shares: the project context, navigation by query parameters, cached reads.

The URL is the state: ``?page=...`` plus the page's parameters, so whatever is on
screen can be shared as a link. Reads are cached per store version (the DuckDB
file's and its WAL's modification times), so a page shows new data as soon as
the scheduler has written it, and repeated views cost nothing in between.
"""
from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from monitor.config import ProjectConfig, load_config
from monitor.dashboard import queries
from monitor.dashboard.settings import DashboardSettings, dashboard_settings
from monitor.engine.windows import GRAIN_STEP
from monitor.events.annotations import chart_events
from monitor.events.store import read_links
from monitor.store import Store
from monitor.warehouse import open_store, reading_store


@dataclass(frozen=True)
class AppContext:
    config: ProjectConfig
    settings: DashboardSettings
    store: Store
    base_url: str

    @property
    def store_key(self) -> tuple:
        """Identifies the store's current content for the caches."""
        prefix = getattr(getattr(self.store, "warehouse", None), "prefix", None)  # warehouse mode
        return (str(self.store.path), store_version(self.store.path), None if prefix is None else str(prefix))


def config_path_from_argv(argv: list[str]) -> str | None:
    """`streamlit run app.py -- --config PATH` (or --config=PATH); None to use $MONITOR_CONFIG / the cwd."""
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    return None


def load_context() -> AppContext:
    config = load_config(config_path_from_argv(sys.argv[1:]))
    settings = dashboard_settings(config)
    return AppContext(config=config, settings=settings, store=open_store(config, lock_wait=10.0),
                      base_url=settings.url.rstrip("/"))


def store_version(path: Path) -> tuple[int, int]:
    def mtime(p: Path) -> int:
        try:
            return p.stat().st_mtime_ns
        except OSError:
            return 0

    return mtime(path), mtime(Path(str(path) + ".wal"))


# -- navigation ----------------------------------------------------------------------------------
def go(page: str, **params: str) -> None:
    """Switch view by rewriting the query parameters (use as a widget callback)."""
    st.query_params.from_dict({"page": page, **{k: v for k, v in params.items() if v not in (None, "")}})


def param(name: str, default: str = "") -> str:
    value = st.query_params.get(name, default)
    return value if isinstance(value, str) else (value[-1] if value else default)


# -- cached reads --------------------------------------------------------------------------------
_CACHED: dict = {}


def _cached(fn):
    """`fn` wrapped in st.cache_data with the project's cache_seconds as TTL."""

    def call(ctx: AppContext, *args):
        ttl = max(ctx.settings.cache_seconds, 1)
        wrapped = _CACHED.get((fn.__name__, ttl))
        if wrapped is None:
            wrapped = _CACHED[(fn.__name__, ttl)] = st.cache_data(ttl=ttl, show_spinner=False, max_entries=256)(fn)
        return wrapped(ctx.store_key, str(ctx.config.metrics_dir), ctx.settings.min_segment_size, *args)

    return call


def clear_caches() -> None:
    """After an action: the next draw reads the store again (its new version would miss anyway)."""
    for wrapped in _CACHED.values():
        wrapped.clear()


_CATALOGS: dict[tuple, dict[str, dict]] = {}


def _catalog_headers(metrics_dir: str) -> dict[str, dict]:
    """The current metric files' headers, parsed again only when a file changes.

    Broken files are skipped (the store still has the header their history was
    computed with). Kept apart from the data caches: new data does not change them.
    """
    from monitor.catalog import load_catalog

    folder = Path(metrics_dir)
    try:
        key = (metrics_dir, tuple(sorted((p.name, p.stat().st_mtime_ns) for p in folder.glob("*.sql"))))
    except OSError:
        return {}
    if key not in _CATALOGS:
        try:
            catalog = load_catalog(folder)
            headers = {name: m.header_dict() for name, m in catalog.metrics.items()}
        except Exception:  # noqa: BLE001 - the dashboard shows stored metrics even when a file is broken
            headers = {}
        if len(_CATALOGS) > 16:
            _CATALOGS.clear()
        _CATALOGS[key] = headers
    return _CATALOGS[key]


def _store(store_key: tuple) -> Store:
    return reading_store(store_key[0], store_key[2], lock_wait=10.0)


@_cached
def overview_data(store_key, metrics_dir, min_size):
    """Headers, one row per metric, open incidents, and those resolved in the week before the latest data."""
    catalog = _catalog_headers(metrics_dir)
    with queries.reading(_store(store_key)) as con:
        headers = queries.metric_headers(con, catalog)
        frame = queries.overview_frame(con, headers)
        open_incidents = queries.incidents_frame(con, status="open")
        latest = frame["latest_ts"].dropna().max() if len(frame) else None
        resolved = (queries.incidents_frame(con, status="resolved", ended_since=latest - dt.timedelta(days=7),
                                            limit=50)
                    if latest is not None and not pd.isna(latest) else open_incidents.iloc[0:0])
    return {"headers": headers, "metrics": frame, "open": open_incidents, "resolved": resolved}


@_cached
def headers_data(store_key, metrics_dir, min_size):
    with queries.reading(_store(store_key)) as con:
        return queries.metric_headers(con, _catalog_headers(metrics_dir))


@_cached
def metric_data(store_key, metrics_dir, min_size, name: str, label: str, days: int):
    """Everything the metric page draws, from one read-only connection."""
    from monitor.dashboard.links import parse_slice

    segment = parse_slice(label)
    catalog = _catalog_headers(metrics_dir)
    with queries.reading(_store(store_key)) as con:
        headers = queries.metric_headers(con, catalog)
        header = headers.get(name)
        if header is None:
            return None
        span = queries.data_range(con, name)
        if span is None:
            return {"header": header, "span": None}
        step = queries.step_of(header)
        end = span[1] + step
        start = max(end - dt.timedelta(days=days), span[0])
        series = queries.metric_series(con, header, segment, start=start, end=end, min_size=min_size)
        cps = queries.change_points(con, name, segment, start=start, end=end)
        incidents = queries.metric_incidents(con, header, start=start, end=end)
        events = chart_events(con, name, segment, start=start, end=end)
        since = span[1] - dt.timedelta(days=27)
        values = {}
        for dim in header.get("dimensions") or []:
            values[(dim, "")] = queries.slice_values(con, header, dim, within={}, since=since, min_size=min_size)
        if segment:
            first_dim = next(iter(segment))
            within = {first_dim: segment[first_dim]}
            for dim in header.get("dimensions") or []:
                if dim != first_dim:
                    values[(dim, first_dim)] = queries.slice_values(con, header, dim, within=within, since=since,
                                                                    min_size=min_size)
    return {"header": header, "span": span, "start": start, "end": end, "series": series,
            "change_points": cps, "incidents": incidents, "slice_values": values, "events": events}


@_cached
def incident_data(store_key, metrics_dir, min_size, incident_id: str):
    """Everything the incident page draws, from one read-only connection."""
    catalog = _catalog_headers(metrics_dir)
    with queries.reading(_store(store_key)) as con:
        incident = queries.incident(con, incident_id)
        if incident is None:
            return None
        headers = queries.metric_headers(con, catalog)
        header = headers.get(incident.metric) or queries.metric_headers(
            con, {incident.metric: {"name": incident.metric}})[incident.metric]
        step = queries.step_of(header)
        start = incident.start_ts
        end = incident.end_ts or (incident.last_ts + step)
        context_start = start - dt.timedelta(days=28) if header["grain"] == "day" else start - dt.timedelta(days=7)
        after = dt.timedelta(days=7) if header["grain"] == "day" else dt.timedelta(days=1)
        context_end = max(end, start + step) + after
        span = queries.data_range(con, incident.metric)
        if span is not None:
            context_end = min(context_end, span[1] + step)
        series = queries.metric_series(con, header, incident.segment, start=context_start, end=context_end,
                                       min_size=min_size)
        cps = queries.change_points(con, incident.metric, incident.segment, start=context_start,
                                    end=context_end)
        others, same = queries.related_incidents(con, incident, header)
        volumes = queries.attribution_volumes(con, incident, header)
        events = chart_events(con, incident.metric, incident.segment, start=context_start, end=context_end)
        links = read_links(con, [incident.incident_id]).get(incident.incident_id, [])
        histogram = None
        if header.get("kind") == "distribution":
            from monitor.dashboard.histogram import histogram_frame

            histogram = histogram_frame(con, header, incident, step)
    return {"incident": incident, "header": header, "headers": headers, "series": series, "change_points": cps,
            "other_metrics": others, "same_metric": same, "window": (context_start, context_end),
            "volumes": volumes, "events": events, "links": links, "histogram": histogram}


def incident_end(row, grain: str):
    """Exclusive end of an incident for shading (open ones: one bucket after last seen)."""
    step = GRAIN_STEP.get(grain, GRAIN_STEP["day"])
    end = row.get("end_ts")
    if end is None or pd.isna(end):
        return pd.Timestamp(row["last_ts"]) + step
    return pd.Timestamp(end)


def shading_frame(incidents: pd.DataFrame, grain: str) -> pd.DataFrame:
    if incidents is None or incidents.empty:
        return pd.DataFrame(columns=["incident_id", "slice", "severity", "start_ts", "end"])
    frame = incidents.copy()
    frame["end"] = [incident_end(r, grain) for r in frame.to_dict("records")]
    return frame


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


# -- tables ----------------------------------------------------------------------------------------
STATUSES = ["alerting", "failing", "acknowledged", "ok", "no data", "open", "resolved"]
STATUS_COLORS = ["red", "violet", "orange", "green", "gray", "red", "green"]
SEVERITIES = ["critical", "high", "medium", "low"]
SEVERITY_COLORS = ["red", "orange", "yellow", "gray"]


def pills(values) -> list[list[str]]:
    """Cells for a coloured-label column (one label each, none for empty)."""
    return [[str(v)] if v else [] for v in values]


def severity_column(label: str = "Severity"):
    return st.column_config.MultiselectColumn(label, options=SEVERITIES, color=SEVERITY_COLORS, width="small")


def status_column(label: str = "Status"):
    return st.column_config.MultiselectColumn(label, options=STATUSES, color=STATUS_COLORS, width="small")


def chart(figure) -> None:
    """Draw a dashboard chart (an Altair :class:`monitor.dashboard.charts.Figure`) at full width."""
    st.vega_lite_chart(spec=figure.to_dict(), width="stretch")
