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

import datetime as dt
import json
import math
from typing import Any

from monitor.links import incident_url, metric_url
from monitor.slices import slice_label

SCHEMA = "monitor.alert/v1"


def is_alert_message(message: dict[str, Any]) -> bool:
    """True for an incident notification (this schema); False for a free-form message such as the
    daily report digest (``monitor.alert.send.send_message``), which notifiers render differently."""
    return message.get("schema") == SCHEMA or "alerts" in message


# -- formatting helpers (shared by Slack and console rendering) --------------------------------
def format_value(value: float | None, *, unit: str = "", metric_kind: str = "") -> str:
    """A metric value as a person reads it: ratios as percentages, counts with separators."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if metric_kind == "ratio" and unit in ("percent", ""):
        pct = value * 100
        return f"{pct:.2f}%" if abs(pct) < 10 else f"{pct:.1f}%"
    if unit == "currency":
        return f"{value:,.2f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def format_change(alert: dict[str, Any]) -> str:
    """'up +42.0% (+0.50 pp), level shift' -- direction, size and shape of the change."""
    direction = alert.get("direction") or "changed"
    parts = [direction]
    rel = alert.get("relative_change")
    if rel is not None and math.isfinite(rel):
        parts.append(f"{rel * 100:+.1f}%" if abs(rel) < 10 else f"{rel:+.1f}x")
    base, now = alert.get("baseline"), alert.get("observed")
    if alert.get("metric_kind") == "ratio" and base is not None and now is not None:
        parts.append(f"({(now - base) * 100:+.2f} pp)")
    text = " ".join(parts)
    kind = (alert.get("kind") or "").replace("_", " ")
    return f"{text}, {kind}" if kind else text


def format_since(alert: dict[str, Any], *, now_iso: str | None) -> str:
    """'2026-03-02 06:00 UTC (26h ago)'; day-grain metrics show the date only."""
    start = _parse_ts(alert.get("start_ts"))
    if start is None:
        return "unknown"
    text = f"{start:%Y-%m-%d}" if alert.get("grain") == "day" else f"{start:%Y-%m-%d %H:%M} UTC"
    now = _parse_ts(now_iso)
    if now is not None and now >= start:
        text += f" ({humanize(now - start)} ago)"
    return text


def humanize(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h" + (f" {minutes}m" if minutes and hours < 6 else "")
    days, hours = divmod(hours, 24)
    return f"{days}d" + (f" {hours}h" if hours else "")


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
# monitor.attribute.explain.Explanation.to_dict(): "causes" (segment, explained_share, size, before,
# after, change_type), "verdict" (ratio: rate | mix | mixed) and "split" (the cut the verdict uses).
_SEGMENT_LISTS = ("causes", "segments", "top_segments")
_SHARE_KEYS = ("explained_share", "share")
_BEFORE_KEYS = ("before", "expected")
_AFTER_KEYS = ("after", "actual")
VERDICT_TEXT = {
    "rate": "traffic mix did not move; rates inside segments did",
    "mix": "rates inside segments did not move; the traffic mix did",
    "mixed": "both the traffic mix and rates inside segments moved",
}


def summarize_explanation(explanation: Any, *, top: int = 3, title: str | None = None) -> dict[str, Any] | None:
    """The part of an attribution an alert shows: top segments with shares, and mix vs rate.

    The one place that reads ``incidents.explanation_json``. It tolerates a
    missing, empty or unfamiliar explanation (returns None, or what it can read):
    an alert without attribution is still an alert.
    """
    if isinstance(explanation, str):
        try:
            explanation = json.loads(explanation)
        except ValueError:
            return None
    if not isinstance(explanation, dict) or not explanation:
        return None
    segments = []
    raw_list = next((explanation[k] for k in _SEGMENT_LISTS if isinstance(explanation.get(k), list)), [])
    for raw in raw_list[:top]:
        if not isinstance(raw, dict) or not isinstance(raw.get("segment"), dict) or not raw["segment"]:
            continue
        segment = {str(k): str(v) for k, v in raw["segment"].items()}
        segments.append({
            "segment": segment,
            "label": slice_label(segment),  # as slices read everywhere (escaped, sorted)
            "share": _first_number(raw, _SHARE_KEYS),  # part of the total change this segment explains
            "size": _first_number(raw, ("size",)),  # its share of the volume after the change
            "before": _first_number(raw, _BEFORE_KEYS),
            "after": _first_number(raw, _AFTER_KEYS),
            "change_type": raw.get("change_type") if raw.get("change_type") in ("rate", "mix") else None,
        })
    verdict = None
    name = explanation.get("verdict")
    if isinstance(name, str) and name:
        split = explanation.get("split") if isinstance(explanation.get("split"), dict) else {}
        change = _first_number(explanation, ("change",))
        mix, rate = _first_number(split, ("mix",)), _first_number(split, ("rate",))
        interaction = _first_number(split, ("interaction",)) or 0.0
        verdict = {
            "verdict": name,
            "text": VERDICT_TEXT.get(name),
            "dimension": split.get("dimension"),  # the cut the split was measured on
            "mix_share": mix / change if change and mix is not None else None,
            "rate_share": (rate + interaction) / change if change and rate is not None else None,
        }
    if not segments and verdict is None:
        return None
    return {"segments": segments, "verdict": verdict, "summary": _summary_line(explanation, title),
            "baseline_label": explanation.get("baseline_label")}


def describe_segment(seg: dict[str, Any], *, unit: str, metric_kind: str) -> str:
    """' — 62% of the change (1.10% -> 3.40%, 12% of traffic, its rate moved)' for one attributed segment."""
    text = f" — {seg['share'] * 100:.0f}% of the change" if seg.get("share") is not None else ""
    details = []
    if seg.get("before") is not None and seg.get("after") is not None:
        details.append(f"{format_value(seg['before'], unit=unit, metric_kind=metric_kind)} → "
                       f"{format_value(seg['after'], unit=unit, metric_kind=metric_kind)}")
    if seg.get("size") is not None:
        size = f"{seg['size'] * 100:.0f}%" if seg["size"] >= 0.01 else "<1%"
        details.append(f"{size} of {'traffic' if metric_kind == 'ratio' else 'the total'}")
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
        text += f" (mix {verdict['mix_share'] * 100:.0f}% of the change"
        text += f", cut by {verdict['dimension']})" if verdict.get("dimension") else ")"
    return f"{name}: {text}" if text else name


def _summary_line(explanation: dict[str, Any], title: str | None) -> str | None:
    """Explanation.summary() (one line, for webhook consumers), if the attribution package can read it."""
    try:
        from monitor.attribute.explain import Explanation

        data = dict(explanation, metric_label=title) if title else explanation
        return Explanation.from_dict(data).summary()
    except Exception:  # noqa: BLE001 - another version's format or a missing package: no summary line
        return None


def _first_number(raw: dict, keys: tuple[str, ...]) -> float | None:
    for key in keys:
        value = raw.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    return None


# -- building a message -------------------------------------------------------------------------
def dashboard_links(*, dashboard_url: str | None, incident_id: str, metric: str, slice_: str) -> dict[str, str]:
    if not dashboard_url:
        return {}
    return {"incident": incident_url(dashboard_url, incident_id), "metric": metric_url(dashboard_url, metric, slice_)}


def alert_entry(incident: dict[str, Any], header: dict[str, Any], *, fingerprint: str, labels: dict[str, str],
                quiet: str | None, dashboard_url: str | None, top_segments: int,
                children: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One incident as it appears in a message (children: slice incidents it carries)."""
    segment = incident.get("slice_json")
    if isinstance(segment, str):
        try:
            segment = json.loads(segment)
        except ValueError:
            segment = {}
    runbook = header.get("runbook") or None
    links = dashboard_links(dashboard_url=dashboard_url, incident_id=incident["incident_id"],
                            metric=incident["metric"], slice_=incident.get("slice") or "")
    if runbook:
        links["runbook"] = runbook
    entry = {
        "fingerprint": fingerprint,
        "incident_id": incident["incident_id"],
        "status": "firing" if incident.get("status") == "open" else "resolved",
        "resolution": incident.get("resolution"),
        "metric": incident["metric"],
        "title": header.get("title") or incident["metric"].replace("_", " ").capitalize(),
        "slice": incident.get("slice") or "",
        "segment": segment or {},
        "direction": incident.get("direction"),
        "kind": incident.get("kind"),
        "severity": incident.get("severity") or header.get("severity"),
        "start_ts": _iso(incident.get("start_ts")),
        "end_ts": _iso(incident.get("end_ts")),
        "last_ts": _iso(incident.get("last_ts")),
        "baseline": _num(incident.get("baseline")),
        "observed": _num(incident.get("observed")),
        "relative_change": _num(incident.get("relative_change")),
        "score": _num(incident.get("score")),
        "metric_kind": header.get("kind"),
        "unit": header.get("unit") or "",
        "grain": header.get("grain"),
        "owner": header.get("owner") or None,
        "team": header.get("team") or None,
        "runbook": runbook,
        "labels": dict(labels),
        "links": links,
        "explanation": summarize_explanation(incident.get("explanation_json"), top=top_segments,
                                             title=header.get("title") or incident["metric"]),
        "quiet": quiet,
        "follows": followed_incident(incident.get("why_json"), dashboard_url=dashboard_url),
        "buckets": moved_buckets_text(incident.get("why_json")),
        "events": alert_events(incident.get("events")),
    }
    if children is not None:
        entry["children"] = children
    return entry


def followed_incident(why_json: Any, *, dashboard_url: str | None) -> dict[str, Any] | None:
    """For an incident raised because another metric's incident named its segment
    (``detect.follows``): that incident, so the on-call sees the two as one story."""
    try:
        why = json.loads(why_json) if isinstance(why_json, str) else (why_json or {})
    except ValueError:
        return None
    lead = why.get("follows") if isinstance(why, dict) else None
    if not isinstance(lead, dict) or not lead.get("incident_id"):
        return None
    return {"metric": lead.get("metric"), "incident_id": lead["incident_id"], "start_ts": lead.get("start"),
            "link": incident_url(dashboard_url, lead["incident_id"]) if dashboard_url else None}


def moved_buckets_text(why_json: Any, *, top: int = 3) -> str | None:
    """A distribution incident's top moved buckets: 'gained 0.55 (1.2% → 3.4%), ...; lost 0.1
    (20.1% → 17.0%)' (None for the other kinds)."""
    try:
        why = json.loads(why_json) if isinstance(why_json, str) else (why_json or {})
    except ValueError:
        return None
    moved = why.get("buckets") if isinstance(why, dict) else None
    if not isinstance(moved, dict):
        return None

    def side(rows) -> str:
        return ", ".join(f"{r['bucket']} ({r['before'] * 100:.1f}% → {r['after'] * 100:.1f}%)"
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
