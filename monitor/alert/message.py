"""The notifier-neutral message: what one notification says, as plain JSON data.

Built once when the message is queued and stored in the outbox, so a retry
sends exactly what the first attempt sent. The webhook notifier posts it as is
(its schema is documented in docs/alerts.md); Slack and the console render it.

Everything an on-call engineer needs to act is here: what moved, which way and
how much, since when, baseline vs now, which segments explain it (and for ratio
metrics whether the traffic mix or the rate moved), who owns it, the runbook,
and links into the dashboard.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import Any

from monitor.attribute.explain import Explanation
from monitor.format import (format_difference, format_duration, format_rate, format_relative, format_share,
                            format_timestamp, format_value, is_missing, is_rate)
from monitor.incident import Incident, Lead, Why
from monitor.links import incident_url, metric_url
from monitor.slices import slice_label

SCHEMA = "monitor.alert/v1"


def is_alert_message(message: dict[str, Any]) -> bool:
    """True for an incident notification (this schema); False for a free-form message such as the
    daily report digest (``monitor.alert.send.send_message``), which notifiers render differently."""
    return message.get("schema") == SCHEMA or "alerts" in message


# -- formatting helpers (shared by Slack and console rendering; the style is monitor.format's) ----
def format_change(alert: dict[str, Any]) -> str:
    """'up +42.0% (+0.50 pp), level shift' -- direction, size and shape of the change."""
    parts = [alert.get("direction") or "changed"]
    kind, unit = alert.get("metric_kind") or "", alert.get("unit") or ""
    if not is_missing(alert.get("relative_change")):
        parts.append(format_relative(alert["relative_change"]))
    if is_rate(kind=kind, unit=unit) and not is_missing(alert.get("baseline")) and not is_missing(alert.get("observed")):
        parts.append(f"({format_difference(alert['baseline'], alert['observed'], kind=kind, unit=unit)})")
    text = " ".join(parts)
    shape = (alert.get("kind") or "").replace("_", " ")
    return f"{text}, {shape}" if shape else text


def format_since(alert: dict[str, Any], *, now_iso: str | None) -> str:
    """'2026-03-02 06:00 UTC (26h ago)'; day-grain metrics show the date only."""
    start = _parse_ts(alert.get("start_ts"))
    if start is None:
        return "unknown"
    text = format_timestamp(start, grain=alert.get("grain") or "hour", utc=True)
    now = _parse_ts(now_iso)
    if now is not None and now >= start:
        text += f" ({format_duration(now - start)} ago)"
    return text


def alert_value(alert: dict[str, Any], key: str) -> str:
    """The alert's ``baseline`` or ``observed`` as its metric's kind and unit read."""
    return format_value(alert.get(key), kind=alert.get("metric_kind") or "", unit=alert.get("unit") or "")


def format_ended(alert: dict[str, Any]) -> str:
    """' at 2026-03-04 06:00 UTC' for a resolved alert ('' without an end)."""
    end = _parse_ts(alert.get("end_ts"))
    return f" at {format_timestamp(end, utc=True)}" if end is not None else ""


def _parse_ts(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    try:
        return dt.datetime.fromisoformat(str(value)).replace(tzinfo=None)
    except ValueError:
        return None


def _iso(value: Any) -> str | None:
    ts = _parse_ts(value)
    return ts.isoformat() if ts is not None else None


# -- attribution --------------------------------------------------------------------------------
VERDICT_TEXT = {
    "rate": "traffic mix did not move; rates inside segments did",
    "mix": "rates inside segments did not move; the traffic mix did",
    "mixed": "both the traffic mix and rates inside segments moved",
}


def summarize_explanation(explanation: Explanation | None, *, top: int = 3,
                          title: str | None = None) -> dict[str, Any] | None:
    """The part of an attribution an alert shows: top segments with shares, and mix vs rate
    (None without attribution: an alert without it is still an alert)."""
    if explanation is None:
        return None
    segments = []
    for cause in explanation.causes[:top]:
        if not cause.segment:
            continue
        segment = {str(k): str(v) for k, v in cause.segment.items()}
        segments.append({
            "segment": segment,
            "label": slice_label(segment),  # as slices read everywhere (escaped, sorted)
            "share": _num(cause.explained_share),  # part of the total change this segment explains
            "size": _num(cause.size),  # its share of the volume after the change
            "before": _num(cause.before),
            "after": _num(cause.after),
            "change_type": cause.change_type if cause.change_type in ("rate", "mix") else None,
        })
    verdict = None
    if explanation.verdict:
        split, change = explanation.split, _num(explanation.change)
        mix, rate = (_num(split.mix), _num(split.rate)) if split is not None else (None, None)
        interaction = (_num(split.interaction) if split is not None else None) or 0.0
        verdict = {
            "verdict": explanation.verdict,
            "text": VERDICT_TEXT.get(explanation.verdict),
            "dimension": split.dimension if split is not None else None,  # the cut the split was measured on
            "mix_share": mix / change if change and mix is not None else None,
            "rate_share": (rate + interaction) / change if change and rate is not None else None,
        }
    if not segments and verdict is None:
        return None
    summary = dataclasses.replace(explanation, metric_label=title).summary() if title else explanation.summary()
    return {"segments": segments, "verdict": verdict, "summary": summary,
            "baseline_label": explanation.baseline_label}


def describe_segment(seg: dict[str, Any], *, unit: str, metric_kind: str) -> str:
    """' — 62% of the change (1.10% -> 3.40%, 12% of traffic, its rate moved)' for one attributed segment."""
    text = f" — {format_share(seg['share'])} of the change" if seg.get("share") is not None else ""
    details = []
    if seg.get("before") is not None and seg.get("after") is not None:
        details.append(f"{format_value(seg['before'], kind=metric_kind, unit=unit)} → "
                       f"{format_value(seg['after'], kind=metric_kind, unit=unit)}")
    if seg.get("size") is not None:
        details.append(f"{format_share(seg['size'])} of {'traffic' if metric_kind == 'ratio' else 'the total'}")
    if seg.get("change_type") == "rate":
        details.append("its rate moved")
    elif seg.get("change_type") == "mix":
        details.append("its traffic share moved")
    return text + (f" ({', '.join(details)})" if details else "")


def describe_verdict(verdict: dict[str, Any]) -> str:
    """'rate: traffic mix did not move; rates inside segments did' (+ the mix share for 'mixed')."""
    name = verdict.get("verdict") or ""
    text = verdict.get("text") or VERDICT_TEXT.get(name, "")
    if name == "mixed" and verdict.get("mix_share") is not None:
        text += f" (mix {format_share(verdict['mix_share'])} of the change"
        text += f", cut by {verdict['dimension']})" if verdict.get("dimension") else ")"
    return f"{name}: {text}" if text else name


# -- building a message -------------------------------------------------------------------------
def dashboard_links(*, dashboard_url: str | None, incident_id: str, metric: str, slice_: str) -> dict[str, str]:
    if not dashboard_url:
        return {}
    return {"incident": incident_url(dashboard_url, incident_id), "metric": metric_url(dashboard_url, metric, slice_)}


def alert_entry(incident: Incident, header: dict[str, Any], *, fingerprint: str, labels: dict[str, str],
                quiet: str | None, dashboard_url: str | None, top_segments: int,
                children: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One incident as it appears in a message (children: slice incidents it carries)."""
    runbook = header.get("runbook") or None
    links = dashboard_links(dashboard_url=dashboard_url, incident_id=incident.incident_id,
                            metric=incident.metric, slice_=incident.slice)
    if runbook:
        links["runbook"] = runbook
    entry = {
        "fingerprint": fingerprint,
        "incident_id": incident.incident_id,
        "status": "firing" if incident.is_open else "resolved",
        "resolution": incident.resolution,
        "metric": incident.metric,
        "title": header.get("title") or incident.metric.replace("_", " ").capitalize(),
        "slice": incident.slice,
        "segment": dict(incident.segment),
        "direction": incident.direction,
        "kind": incident.kind,
        "severity": incident.severity or header.get("severity"),
        "start_ts": _iso(incident.start_ts),
        "end_ts": _iso(incident.end_ts),
        "last_ts": _iso(incident.last_ts),
        "baseline": _num(incident.baseline),
        "observed": _num(incident.observed),
        "relative_change": _num(incident.relative_change),
        "score": _num(incident.score),
        "metric_kind": header.get("kind"),
        "unit": header.get("unit") or "",
        "grain": header.get("grain"),
        "owner": header.get("owner") or None,
        "team": header.get("team") or None,
        "runbook": runbook,
        "labels": dict(labels),
        "links": links,
        "explanation": summarize_explanation(incident.explanation, top=top_segments,
                                             title=header.get("title") or incident.metric),
        "quiet": quiet,
        "follows": followed_incident(incident.why.follows, dashboard_url=dashboard_url),
        "buckets": moved_buckets_text(incident.why),
        "events": alert_events(incident.events),
    }
    if children is not None:
        entry["children"] = children
    return entry


def followed_incident(lead: Lead | None, *, dashboard_url: str | None) -> dict[str, Any] | None:
    """For an incident raised because another metric's incident named its segment
    (``detect.follows``): that incident, so the on-call sees the two as one story."""
    if lead is None:
        return None
    return {"metric": lead.metric, "incident_id": lead.incident_id, "start_ts": lead.start,
            "link": incident_url(dashboard_url, lead.incident_id) if dashboard_url else None}


def moved_buckets_text(why: Why, *, top: int = 3) -> str | None:
    """A distribution incident's top moved buckets: 'gained 0.55 (1.20% → 3.40%), ...; lost 0.1
    (20.1% → 17.0%)' (None for the other kinds)."""
    moved = why.params.get("buckets")
    if not isinstance(moved, dict):
        return None

    def side(rows) -> str:
        return ", ".join(f"{r['bucket']} ({format_rate(r['before'])} → {format_rate(r['after'])})"
                         for r in (rows or [])[:top] if isinstance(r, dict))

    parts = [f"{name} {text}" for name, text in (("gained", side(moved.get("gained"))),
                                                   ("lost", side(moved.get("lost")))) if text]
    return "; ".join(parts) or None


def alert_events(links: list[dict[str, Any]] | None, *, limit: int = 3) -> list[dict[str, Any]]:
    """Our own changes linked to the incident (monitor.events), best first, with their wording."""
    from monitor.events.describe import describe_link

    out = []
    for link in (links or [])[:limit]:
        out.append({"event_id": link["event_id"], "kind": link["kind"], "title": link["title"],
                    "url": link.get("url"), "ts": _iso(link.get("ts")), "end_ts": _iso(link.get("end_ts")),
                    "scope": dict(link.get("scope") or {}), "score": _num(link.get("score")),
                    "lag_seconds": _num(link.get("lag_seconds")), "during": bool(link.get("during")),
                    "expected": bool(link.get("expected_here")), "text": describe_link(link)})
    return out


def _num(value: Any) -> float | None:
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def build_message(*, receiver: str, group_key: str, group_labels: dict[str, str], reason: str,
                  firing: list[dict], resolved: list[dict], created_at: dt.datetime,
                  dashboard_url: str | None) -> dict[str, Any]:
    """The whole notification for one group (message_id is added when it is queued)."""
    status = "firing" if firing else "resolved"
    message = {
        "schema": SCHEMA,
        "message_id": None,
        "receiver": receiver,
        "group_key": group_key,
        "group_labels": dict(group_labels),
        "status": status,
        "reason": reason,
        "created_at": created_at.replace(tzinfo=None).isoformat(),
        "firing": len(firing),
        "resolved": len(resolved),
        "alerts": [*firing, *resolved],
        "dashboard_url": dashboard_url,
    }
    message["summary"] = summary_line(message)
    return message


def summary_line(message: dict[str, Any]) -> str:
    """One line for notification previews and logs: '[FIRING] Fraud rate up +42.0% (total) + 3 slices'."""
    alerts = message.get("alerts") or []
    tag = {"repeat": "STILL FIRING", "resolved": "RESOLVED"}.get(message.get("reason"), message["status"].upper())
    if message["status"] == "resolved":
        tag = "RESOLVED"
    if not alerts:
        return f"[{tag}] (no incidents)"
    lead = alerts[0]
    where = lead["slice"] or "total"
    if lead["status"] == "firing":
        text = f"[{tag}] {lead['title']} {format_change(lead).split(',')[0]} ({where})"
    else:
        text = f"[{tag}] {lead['title']} ({where}) {describe_resolution(lead)}"
    children = len(lead.get("children") or [])
    if children:
        text += f" + {children} slice{'s' if children != 1 else ''}"
    others = len(alerts) - 1
    if others:
        text += f", and {others} more incident{'s' if others != 1 else ''}"
    return text


def describe_resolution(alert: dict[str, Any]) -> str:
    return {
        "recovered": "recovered",
        "new_normal": "accepted as the new normal",
        "withdrawn": "withdrawn (no longer detected after a re-run)",
    }.get(alert.get("resolution") or "", "resolved")
