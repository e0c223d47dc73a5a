"""Local notifiers: ``console`` (stdout/stderr) and ``file`` (append to a file).

What ``make demo`` shows a newcomer without Slack, so the text carries the
same content as the Slack message: one block per group with title, slice,
change, since when, baseline vs now, top segments, slices under a total,
owner and links.
"""
from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any

from monitor.settings import Setting
from monitor.alert.message import (alert_value, describe_resolution, describe_segment, describe_verdict,
                                   format_change, format_ended, format_since, is_alert_message)
from monitor.alert.notifiers import RETRY, SENT, Delivery, Notifier, register

RULE = "─" * 72
MAX_CHILDREN = 8


def render_text(message: dict[str, Any], *, max_alerts: int = 10) -> str:
    """The message as plain text, one block per group (a free-form message: its title and text)."""
    if not is_alert_message(message):
        return render_message_text(message)
    lines = [RULE, message.get("summary") or "alert"]
    created = (message.get("created_at") or "")[:16].replace("T", " ")
    group = ", ".join(f"{k}={v}" for k, v in (message.get("group_labels") or {}).items() if len(str(v)) < 80)
    lines.append(f"  {message.get('reason')} · to {message.get('receiver')} · {created} UTC"
                 + (f" · group {group}" if group else ""))
    alerts = message.get("alerts") or []
    for alert in alerts[:max_alerts]:
        lines.append("")
        lines.extend(_alert_lines(alert, created_at=message.get("created_at")))
    if len(alerts) > max_alerts:
        lines.append("")
        lines.append(f"  … and {len(alerts) - max_alerts} more incident(s); see the dashboard.")
    lines.append(RULE)
    return "\n".join(lines)


def render_message_text(message: dict[str, Any]) -> str:
    """A free-form message (the daily report digest) as plain text: title, facts, summary, text, link."""
    from monitor.alert.blocks import message_body, message_facts, message_title

    created = (message.get("created_at") or "")[:16].replace("T", " ")
    meta = [str(message.get("kind") or "message").replace("_", " ")]
    if message.get("receiver"):
        meta.append(f"to {message['receiver']}")
    if created:
        meta.append(f"{created} UTC")
    facts = message_facts(message)
    if facts:
        meta.append(facts)
    lines = [RULE, message_title(message), "  " + " · ".join(meta)]
    summary = " ".join(str(message.get("summary") or "").split())
    if summary:
        lines += ["", summary]
    body = message_body(message)
    if body:
        lines += ["", *body]
    if message.get("url"):
        lines += ["", f"Full report: {message['url']}"]
    lines.append(RULE)
    return "\n".join(lines)


def _alert_lines(alert: dict[str, Any], *, created_at: str | None) -> list[str]:
    unit, kind = alert.get("unit", ""), alert.get("metric_kind", "")
    mark = "●" if alert["status"] == "firing" else "✓"
    severity = f"  [{alert['severity']}]" if alert.get("severity") else ""
    out = [f"{mark} {alert['title']} — {alert['slice'] or 'total'}{severity}"]

    def row(label: str, value: str) -> None:
        out.append(f"  {label:<9} {value}")

    if alert["status"] == "firing":
        row("change", format_change(alert))
    else:
        row("status", describe_resolution(alert) + format_ended(alert))
        row("was", format_change(alert))
    row("since", format_since(alert, now_iso=created_at if alert["status"] == "firing" else None))
    base, seen = alert_value(alert, "baseline"), alert_value(alert, "observed")
    if alert["status"] == "firing":
        row("baseline", f"{base}  ->  now {seen}")
    else:
        row("baseline", f"{base}  ->  {seen} during the incident")
    if alert.get("quiet"):
        row("note", f"{alert['quiet']} (not repeated)")
    explanation = (alert.get("explanation") or {}) if alert["status"] == "firing" else {}
    segments = explanation.get("segments") or []
    for i, seg in enumerate(segments):
        row("explains" if i == 0 else "", f"{seg['label']}{describe_segment(seg, unit=unit, metric_kind=kind)}")
    verdict = explanation.get("verdict")
    if verdict and kind in ("ratio", "mean", "distribution"):
        row("mix/rate", describe_verdict(verdict))
    if alert.get("buckets"):
        row("buckets", alert["buckets"])
    if alert.get("follows"):
        lead = alert["follows"]
        row("follows", f"{lead.get('metric')} incident {lead['incident_id']} named this segment")
    for i, event in enumerate(alert.get("events") or []):
        row("changes" if i == 0 else "", event["text"] + (f"  {event['url']}" if event.get("url") else ""))
    children = alert.get("children") or []
    if children:
        shown = "; ".join(f"{c['slice']} {format_change(c).split(',')[0]}" for c in children[:MAX_CHILDREN])
        more = f" (+{len(children) - MAX_CHILDREN} more)" if len(children) > MAX_CHILDREN else ""
        row("slices", f"{len(children)} under this total: {shown}{more}")
    if alert.get("owner") or alert.get("team"):
        row("owner", (alert.get("owner") or "") + (f" (team {alert['team']})" if alert.get("team") else ""))
    links = alert.get("links") or {}
    for key in ("incident", "metric", "runbook"):
        if links.get(key):
            row(key, links[key])
    return out


@register("console")
class ConsoleNotifier(Notifier):
    OPTIONS = (
        Setting("stream", "stdout", "choice", "Where to print: stdout or stderr.", choices=("stdout", "stderr")),
    )

    def send(self, message: dict[str, Any], *, idempotency_key: str, now: dt.datetime) -> Delivery:
        stream = sys.stderr if self.receiver.options.get("stream") == "stderr" else sys.stdout
        stream.write(render_text(message, max_alerts=self.receiver.max_alerts) + "\n")
        stream.flush()
        return Delivery(SENT)


@register("file")
class FileNotifier(Notifier):
    OPTIONS = (
        Setting("path", None, "path", "File to append alerts to (relative to monitor.toml).", required=True),
        Setting("format", "text", "choice", "text (as on the console) or jsonl (one message per line, "
                "the webhook schema).", choices=("text", "jsonl")),
    )

    def send(self, message: dict[str, Any], *, idempotency_key: str, now: dt.datetime) -> Delivery:
        path = self.receiver.root / self.receiver.options["path"]
        if self.receiver.options.get("format") == "jsonl":
            text = json.dumps(message, sort_keys=True, default=str)
        else:
            text = render_text(message, max_alerts=self.receiver.max_alerts)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as fh:
                fh.write(text + "\n")
        except OSError as exc:
            return Delivery(RETRY, error=f"cannot write {path}: {exc.strerror or exc}")
        return Delivery(SENT)
