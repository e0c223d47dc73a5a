"""Reading incidents back out of the store, for the CLI (and scripts through --format json)."""
from __future__ import annotations

import datetime as dt
import json

import pandas as pd

from monitor.config import ProjectConfig
from monitor.engine import parse_when
from monitor.errors import MonitorError
from monitor.slices import slice_label
from monitor.store import Store

JSON_FIELDS = ("slice_json", "why_json", "explanation_json")
JSON_NAMES = {"slice_json": "segment", "why_json": "why", "explanation_json": "explanation"}


def _rows(frame: pd.DataFrame) -> list[dict]:
    out = []
    for row in frame.to_dict("records"):
        clean = {}
        for key, value in row.items():
            if isinstance(value, float) and pd.isna(value) or value is pd.NaT:
                value = None
            elif isinstance(value, pd.Timestamp):
                value = value.to_pydatetime()
            if key in JSON_FIELDS:
                clean[JSON_NAMES[key]] = json.loads(value) if value else None
            else:
                clean[key] = value
        out.append(clean)
    return out


def list_incidents(config: ProjectConfig, *, since: str | None = None, metrics: list[str] | None = None,
                   status: str = "all", slices: bool = True) -> list[dict]:
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
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    with Store(config.store_path).connect(read_only=True) as con:
        frame = con.execute(f"SELECT * FROM incidents{where} ORDER BY start_ts DESC, metric, slice", params).df()
    return _rows(frame)


def get_incident(config: ProjectConfig, incident_id: str) -> dict:
    with Store(config.store_path).connect(read_only=True) as con:
        frame = con.execute("SELECT * FROM incidents WHERE incident_id LIKE ? || '%'", [incident_id]).df()
    if frame.empty:
        raise MonitorError(f"No incident {incident_id!r}; list them with `monitor incidents`.")
    if len(frame) > 1:
        raise MonitorError(f"{incident_id!r} matches {len(frame)} incidents; give more of the id.")
    return _rows(frame)[0]


def _pct(x) -> str:
    return "-" if x is None else f"{x * 100:+.1f}%"


def _top_cause(incident: dict) -> str:
    causes = (incident.get("explanation") or {}).get("causes") or []
    if not causes:
        return "-"
    c = causes[0]
    seg = slice_label(c.get("segment") or {})
    share = c.get("explained_share")
    return f"{seg} ({share * 100:.0f}%)" if share is not None else seg


def render_table(rows: list[dict]) -> str:
    if not rows:
        return "No incidents."
    header = ["id", "metric", "slice", "start", "end", "dir", "baseline", "observed", "change", "status", "top segment"]
    lines = [header]
    for r in rows:
        lines.append([
            r["incident_id"], r["metric"], r["slice"] or "(total)", f"{r['start_ts']:%Y-%m-%d %H:%M}",
            f"{r['end_ts']:%Y-%m-%d %H:%M}" if r["end_ts"] else "open", r["direction"],
            _num(r["baseline"]), _num(r["observed"]), _pct(r["relative_change"]),
            r["status"] + (f" ({r['resolution']})" if r.get("resolution") else ""), _top_cause(r),
        ])
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)


def _num(x) -> str:
    if x is None:
        return "-"
    return f"{x:.4g}" if abs(x) < 1 else f"{x:,.1f}"


def render_explanation(incident: dict) -> str:
    from monitor.attribute.render import render_text

    until = "" if incident["end_ts"] is None else f" until {incident['end_ts']:%Y-%m-%d %H:%M}"
    head = (f"{incident['metric']} {incident['slice'] or '(total)'}: {incident['direction']} "
            f"{_pct(incident['relative_change'])} since {incident['start_ts']:%Y-%m-%d %H:%M}{until}"
            f" [{incident['status']}]")
    why = incident.get("why") or {}
    lines = [head, f"  baseline {_num(incident['baseline'])} -> observed {_num(incident['observed'])},"
                   f" score {incident['score']:.1f}, detector {why.get('detector', '?')}"]
    if incident.get("explanation"):
        lines.append(render_text(incident["explanation"]))
    else:
        lines.append("  (no attribution stored yet: run `monitor detect`)")
    if incident.get("events"):
        from monitor.events.describe import describe_link

        lines.append("Our changes before it (best match first):")
        for link in incident["events"]:
            tag = " [expected: does not page]" if link.get("expected_here") else ""
            url = f" {link['url']}" if link.get("url") else ""
            lines.append(f"  - {describe_link(link)} (score {link['score']:.2f}, {link['scope_match']}){tag}{url}")
    return "\n".join(lines)
