"""Reading incidents back out of the store, for the CLI (and scripts through --format json)."""
from __future__ import annotations

from typing import Mapping

from monitor.config import ProjectConfig
from monitor.engine import parse_when
from monitor.errors import MonitorError
from monitor.format import MISSING, format_relative, format_share, format_timestamp, format_value
from monitor.incident import Incident, read_store
from monitor.slices import slice_text
from monitor.store import Store

def list_incidents(config: ProjectConfig, *, since: str | None = None, metrics: list[str] | None = None,
                   status: str = "all", slices: bool = True) -> list[Incident]:
    clauses, params = [], []
    if since:
        clauses.append("coalesce(end_ts, TIMESTAMP '9999-12-31') >= ?")
        params.append(parse_when(since))
    if metrics:
        clauses.append("metric IN (SELECT unnest(?))")
        params.append(list(metrics))
    if status != "all":
        clauses.append("status = ?")
        params.append(status)
    if not slices:
        clauses.append("(slice = '' OR parent_id IS NULL)")
    return read_store(Store(config.store_path), " AND ".join(clauses), params, order="start_ts DESC, metric, slice")


def get_incident(config: ProjectConfig, incident_id: str) -> Incident:
    found = read_store(Store(config.store_path), "incident_id LIKE ? || '%'", [incident_id])
    if not found:
        raise MonitorError(f"No incident {incident_id!r}; list them with `monitor incidents`.")
    if len(found) > 1:
        raise MonitorError(f"{incident_id!r} matches {len(found)} incidents; give more of the id.")
    return found[0]


def _top_cause(incident: Incident) -> str:
    causes = incident.explanation.causes if incident.explanation is not None else ()
    if not causes:
        return MISSING
    seg = slice_text(causes[0].segment)
    share = causes[0].explained_share
    return f"{seg} ({format_share(share)})" if share is not None else seg


def metric_kinds(config: ProjectConfig) -> dict[str, str]:
    """metric -> kind (ratio, sum, ...) as stored with the definitions: it picks how values read."""
    with Store(config.store_path).connect(read_only=True) as con:
        return dict(con.execute("SELECT metric, kind FROM metric_definitions").fetchall())


def render_table(rows: list[Incident], kinds: Mapping[str, str] | None = None) -> str:
    if not rows:
        return "No incidents."
    header = ["id", "metric", "slice", "start", "end", "dir", "baseline", "observed", "change", "status", "top segment"]
    lines = [header]
    for r in rows:
        lines.append([
            r.incident_id, r.metric, slice_text(r.segment), format_timestamp(r.start_ts),
            format_timestamp(r.end_ts) if r.end_ts else "open", r.direction,
            _value(r.baseline, kinds, r), _value(r.observed, kinds, r), format_relative(r.relative_change),
            r.status + (f" ({r.resolution})" if r.resolution else ""), _top_cause(r),
        ])
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)


def _value(x, kinds: Mapping[str, str] | None, incident: Incident) -> str:
    return format_value(x, kind=(kinds or {}).get(incident.metric, ""))


def render_explanation(incident: Incident, kinds: Mapping[str, str] | None = None) -> str:
    from monitor.attribute.render import render_text

    until = "" if incident.end_ts is None else f" until {format_timestamp(incident.end_ts)}"
    head = (f"{incident.metric} {slice_text(incident.segment)}: {incident.direction} "
            f"{format_relative(incident.relative_change)} since {format_timestamp(incident.start_ts)}{until}"
            f" [{incident.status}]")
    lines = [head, f"  baseline {_value(incident.baseline, kinds, incident)} -> observed "
                   f"{_value(incident.observed, kinds, incident)},"
                   f" score {incident.score:.1f}, detector {incident.why.detector or '?'}"]
    if incident.explanation is not None:
        lines.append(render_text(incident.explanation))
    else:
        lines.append("  (no attribution stored yet: run `monitor detect`)")
    if incident.events:
        from monitor.events.describe import describe_link

        lines.append("Our changes before it (best match first):")
        for link in incident.events:
            tag = " [expected: does not page]" if link.get("expected_here") else ""
            url = f" {link['url']}" if link.get("url") else ""
            lines.append(f"  - {describe_link(link)} (score {link['score']:.2f}, {link['scope_match']}){tag}{url}")
    return "\n".join(lines)
