"""Slack Block Kit rendering of a message, kept inside Slack's limits.

Slack rejects a payload outright (HTTP 400 ``invalid_blocks``) when a limit is
broken, and that alert would be lost; so every text is clipped to its limit
(counted in UTF-16 units, as Slack counts), the number of blocks is capped with
a closing "and N more" line, and ``validate_blocks`` checks the result.
Links use mrkdwn (``<url|text>``) rather than buttons: URL buttons from an
incoming webhook show a warning icon when the app has no interactivity URL.
Every text, the top-level notification text included, is escaped (``mrkdwn``):
values from the data go in code spans, other free text through ``literal``.
"""
from __future__ import annotations

from typing import Any

from monitor.alert.mrkdwn import code, esc, literal
from monitor.alert.message import (alert_value, describe_resolution, describe_segment, describe_verdict,
                                   format_change, format_ended, format_since, is_alert_message)

MAX_BLOCKS = 50
MAX_TEXT = 3000  # section / context text
MAX_HEADER = 150  # header plain_text
MAX_CONTEXT_ELEMENTS = 10
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_FALLBACK = 3000  # our own cap for the top-level notification text
MAX_CHILDREN = 8  # slice incidents listed under a total

STATUS_EMOJI = {"firing": ":red_circle:", "resolved": ":white_check_mark:"}


def slack_len(text: str) -> int:
    """Length as Slack counts it (UTF-16 code units: an emoji can count as two)."""
    return len(text.encode("utf-16-le")) // 2


def clip(text: str, limit: int) -> str:
    """Text cut to ``limit`` with an ellipsis, at a line end if one is near, never inside <link> or &entity;."""
    if slack_len(text) <= limit:
        return text
    budget, units, end = limit - 1, 0, 0  # keep one unit for the ellipsis
    for i, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > budget:
            break
        end = i + 1
    cut = text[:end]
    newline = cut.rfind("\n")
    if newline >= len(cut) * 0.7:
        cut = cut[:newline]
    while True:  # each trim can expose another half-open construct: repeat until none is left
        before = cut
        if cut.rfind("<") > cut.rfind(">"):
            cut = cut[: cut.rfind("<")]
        if cut.rfind("&") > cut.rfind(";"):
            cut = cut[: cut.rfind("&")]
        if cut.count("`") % 2:
            cut = cut[: cut.rfind("`")]
        if cut == before:
            return cut.rstrip() + "…"


def link(url: str | None, label: str) -> str | None:
    if not url or not str(url).startswith(("http://", "https://")):
        return None
    # The URL is not shown; only the characters that would end the link are encoded.
    url = str(url).replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")
    return f"<{url}|{literal(label)}>"


def render_blocks(message: dict[str, Any], *, max_alerts: int = 10) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) for one message; always within Slack's limits."""
    if not is_alert_message(message):
        return render_message_blocks(message, max_lines=max_alerts)
    alerts = message.get("alerts") or []
    header = {"type": "header", "text": {"type": "plain_text", "text": clip(esc(_header_text(message)), MAX_HEADER),
                                          "emoji": True}}
    blocks: list[dict[str, Any]] = [header]
    context = _message_context(message)
    if context:
        blocks.append(_context([context]))
    shown = 0
    for index, alert in enumerate(alerts[:max_alerts]):
        chunk = ([{"type": "divider"}] if index else []) + _alert_blocks(alert, created_at=message.get("created_at"))
        if len(blocks) + len(chunk) > MAX_BLOCKS - 1:  # keep one block for the "more" line
            break
        blocks.extend(chunk)
        shown += 1
    if shown < len(alerts):
        rest = alerts[shown:]
        lines = [f"*… and {len(rest)} more incident{'s' if len(rest) != 1 else ''}:* "
                 + ", ".join(f"{literal(a['title'])} ({code(a['slice']) if a['slice'] else 'total'})" for a in rest[:20])]
        if message.get("dashboard_url"):
            lines.append(link(message["dashboard_url"], "all incidents in the dashboard") or "")
        blocks.append(_section("\n".join(lines)))
    # Slack shows this text in push notifications, where <!channel> would still ping everyone.
    return clip(literal(message.get("summary") or _header_text(message)), MAX_FALLBACK), blocks


def _header_text(message: dict[str, Any]) -> str:
    icon = "✅" if message.get("status") == "resolved" else ("🔁" if message.get("reason") == "repeat" else "🔴")
    return f"{icon} {message.get('summary') or 'Alert'}"


def _message_context(message: dict[str, Any]) -> str:
    reason = {"new": "new", "update": "updated", "repeat": "still firing, reminder", "resolved": "resolved"}.get(
        message.get("reason"), message.get("reason") or "")
    firing, resolved = message.get("firing", 0), message.get("resolved", 0)
    counts = f"{firing} firing" + (f", {resolved} resolved" if resolved else "")
    return f"{esc(reason)} · {counts} · {esc(message.get('created_at', '')[:16].replace('T', ' '))} UTC"


def _alert_blocks(alert: dict[str, Any], *, created_at: str | None) -> list[dict[str, Any]]:
    blocks = [_section(_headline(alert, created_at=created_at))]
    explanation = _explanation_text(alert)
    if explanation and alert["status"] == "firing":
        blocks.append(_section(explanation))
    if alert.get("buckets"):
        blocks.append(_context([f"*Buckets that moved:* {literal(alert['buckets'])}"]))
    if alert.get("follows"):
        blocks.append(_context([_follows_text(alert["follows"])]))
    if alert.get("events"):
        blocks.append(_context([_events_text(alert["events"])]))
    children = alert.get("children") or []
    if children:
        blocks.append(_context([_children_text(children)]))
    footer = _footer(alert)
    if footer:
        blocks.append(_context(footer))
    return blocks


def _headline(alert: dict[str, Any], *, created_at: str | None) -> str:
    where = code(alert["slice"]) if alert.get("slice") else "total"
    title = f"{STATUS_EMOJI.get(alert['status'], '')} *{literal(alert['title'])}* · {where}"
    unit, kind = alert.get("unit", ""), alert.get("metric_kind", "")
    base, now = alert_value(alert, "baseline"), alert_value(alert, "observed")
    lines = [title]
    if alert["status"] == "firing":
        severity = f" · severity *{literal(alert['severity'])}*" if alert.get("severity") else ""
        lines.append(f"*{esc(format_change(alert))}*{severity}")
        lines.append(f"Since {esc(format_since(alert, now_iso=created_at))} · baseline *{base}* → now *{now}*")
    else:
        lines.append(f"*{esc(describe_resolution(alert).capitalize())}*{esc(format_ended(alert))}")
        lines.append(f"Was {esc(format_change(alert))} since {esc(format_since(alert, now_iso=None))}: "
                     f"baseline *{base}* vs *{now}*")
    if alert.get("quiet"):
        lines.append(f"_{literal(alert['quiet'])}: no repeats for this incident_")
    return "\n".join(lines)


def _explanation_text(alert: dict[str, Any]) -> str | None:
    explanation = alert.get("explanation")
    if not explanation:
        return None
    unit, kind = alert.get("unit", ""), alert.get("metric_kind", "")
    against = f" (vs {literal(explanation['baseline_label'])})" if explanation.get("baseline_label") else ""
    lines = [f"*What explains it*{against}"]
    for seg in explanation.get("segments") or []:
        lines.append(f"• {code(seg['label'])}{literal(describe_segment(seg, unit=unit, metric_kind=kind))}")
    verdict = explanation.get("verdict")
    if verdict and kind in ("ratio", "mean", "distribution"):
        lines.append(f"*Mix vs rate:* {literal(describe_verdict(verdict))}")
    return "\n".join(lines) if len(lines) > 1 else None


def _follows_text(lead: dict[str, Any]) -> str:
    incident = link(lead.get("link"), f"incident {lead['incident_id']}") or f"incident {literal(lead['incident_id'])}"
    return f"*Pointed at by* *{literal(lead.get('metric'))}* {incident}: its segment was tested here on its own"


def _events_text(events: list[dict[str, Any]]) -> str:
    """'*Our changes before it:* 3 h after rule 'R-142 ...' on payment_method=card' (linked when it has a URL)."""
    shown = []
    for e in events:
        text = literal(e["text"])
        shown.append(link(e.get("url"), e["text"]) if e.get("url") else text)
    return "*Our changes before it:* " + " · ".join(shown)


def _children_text(children: list[dict[str, Any]]) -> str:
    shown = [f"{code(c['slice'])} {literal(format_change(c).split(',')[0])}" for c in children[:MAX_CHILDREN]]
    more = f" (+{len(children) - MAX_CHILDREN} more)" if len(children) > MAX_CHILDREN else ""
    return f"*Slices moving under this total ({len(children)}):* " + " · ".join(shown) + more


def _footer(alert: dict[str, Any]) -> list[str]:
    links = alert.get("links") or {}
    parts = [p for p in (link(links.get("incident"), "Open incident"), link(links.get("metric"), "Metric chart"),
                         link(links.get("runbook"), "Runbook")) if p]
    if alert.get("runbook") and not link(alert.get("runbook"), "Runbook"):
        parts.append(f"runbook: {literal(alert['runbook'])}")
    who = " · ".join(f"{k} *{literal(alert[k])}*" for k in ("owner", "team") if alert.get(k))
    if who:
        parts.append(who)
    return [" · ".join(parts)] if parts else []


# -- free-form messages (the daily report digest) ------------------------------------------------
BULLETS = ("• ", "- ", "* ", "◦ ")


def message_title(message: dict[str, Any]) -> str:
    """The title of a free-form message as plain text (Slack bold markers removed)."""
    title = " ".join(str(message.get("title") or "").split()).strip("*").strip()
    return title or " ".join(str(message.get("summary") or "").split()) or "Message"


def message_body(message: dict[str, Any]) -> list[str]:
    """The lines of ``text`` that say something the title, summary and report link do not."""
    title, url = message_title(message), str(message.get("url") or "")
    summary = " ".join(str(message.get("summary") or "").split())
    out = []
    for raw in str(message.get("text") or "").splitlines():
        line = raw.strip()
        if line.strip("*").strip() == title or (summary and line == summary):
            continue
        if url and url in line and len(line) <= len(url) + 40:  # "Full report: <url>": it gets its own block
            continue
        out.append(raw.rstrip())
    while out and not out[0].strip():
        out.pop(0)
    while out and not out[-1].strip():
        out.pop()
    return out


def message_facts(message: dict[str, Any]) -> str:
    """'risk · 2026-03-20', with '1 new, 2 ongoing incidents · 7 data health issues' when there is no summary
    (the report digest's summary already says it)."""
    parts = [str(message[k]) for k in ("project", "date") if message.get(k)]
    if str(message.get("summary") or "").strip():
        return " · ".join(parts)
    counts = message.get("incidents")
    if isinstance(counts, dict) and counts:
        parts.append(", ".join(f"{n} {k}" for k, n in counts.items()) + " incidents")
    issues = message.get("data_health_issues")
    if isinstance(issues, int) and not isinstance(issues, bool):
        parts.append(f"{issues} data health issue{'s' if issues != 1 else ''}")
    return " · ".join(parts)


def render_message_blocks(message: dict[str, Any], *, max_lines: int = 10) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) for a free-form message: header, facts, summary, text, report link.

    At most ``max_lines`` bullet lines (the incident lines of a digest) are shown, the rest are
    counted; the text is split into sections of at most 3,000 characters, and when it needs more
    blocks than Slack allows, the last one says the rest is in the report. Always within limits.
    """
    title, url = message_title(message), str(message.get("url") or "")
    summary = " ".join(str(message.get("summary") or "").split())
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": clip(esc(title), MAX_HEADER), "emoji": True}}]
    facts = message_facts(message)
    if facts:
        blocks.append(_context([literal(facts)]))
    if summary:
        blocks.append(_section(literal(summary)))

    lines: list[str] = []
    bullets = hidden = 0
    last_bullet = -1
    for line in message_body(message):
        if line.lstrip().startswith(BULLETS):
            bullets += 1
            if bullets > max_lines:
                hidden += 1
                continue
            last_bullet = len(lines)
        lines.append(esc(line))
    if hidden:
        more = f"• _… and {hidden} more line{'s' if hidden != 1 else ''} in the full report_"
        lines.insert(last_bullet + 1, more)

    target = link(url, "Open the full report")
    if target:
        tail = [_section(f"*{target}*")]
    elif url:  # a file:// link (no [report] base_url): shown, Slack cannot open it
        tail = [_section(f"Full report: {code(url)}")]
    else:
        tail = []
    chunks = _pack(lines, MAX_TEXT)
    room = MAX_BLOCKS - len(blocks) - len(tail)
    if len(chunks) > room:
        chunks = chunks[:room - 1] + ["_… the rest does not fit in a Slack message; see the full report._"]
    blocks += [_section(chunk) for chunk in chunks] + tail

    fallback = literal(f"{title}: {summary}" if summary else title) + (f"\n{esc(url)}" if url else "")
    return clip(fallback, MAX_FALLBACK), blocks


def _pack(lines: list[str], limit: int) -> list[str]:
    """Lines joined into as few texts of at most ``limit`` characters as possible (long lines clipped)."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        line = clip(line, limit)
        need = slack_len(line) + (1 if current else 0)
        if current and size + need > limit:
            chunks.append("\n".join(current))
            current, size, need = [], 0, slack_len(line)
        current.append(line)
        size += need
    if current:
        chunks.append("\n".join(current))
    return [c.strip("\n") for c in chunks if c.strip()]


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text or " ", MAX_TEXT)}}


def _context(texts: list[str]) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(t or " ", MAX_TEXT)}
                                            for t in texts[:MAX_CONTEXT_ELEMENTS]]}


def validate_blocks(blocks: list[dict[str, Any]]) -> list[str]:
    """Every Slack limit this renderer relies on that ``blocks`` breaks (empty = valid)."""
    problems = []
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"{len(blocks)} blocks (max {MAX_BLOCKS})")
    for i, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "header":
            text = block.get("text", {})
            if text.get("type") != "plain_text":
                problems.append(f"block {i}: header text must be plain_text")
            if not 0 < slack_len(text.get("text", "")) <= MAX_HEADER:
                problems.append(f"block {i}: header text has {slack_len(text.get('text', ''))} chars (1..{MAX_HEADER})")
        elif kind == "section":
            text = block.get("text")
            if text is None and not block.get("fields"):
                problems.append(f"block {i}: section needs text or fields")
            if text is not None and not 0 < slack_len(text.get("text", "")) <= MAX_TEXT:
                problems.append(f"block {i}: section text has {slack_len(text.get('text', ''))} chars (1..{MAX_TEXT})")
            fields = block.get("fields") or []
            if len(fields) > MAX_FIELDS:
                problems.append(f"block {i}: {len(fields)} fields (max {MAX_FIELDS})")
            for field in fields:
                if not 0 < slack_len(field.get("text", "")) <= MAX_FIELD_TEXT:
                    problems.append(f"block {i}: field text over {MAX_FIELD_TEXT} chars")
        elif kind == "context":
            elements = block.get("elements") or []
            if not 0 < len(elements) <= MAX_CONTEXT_ELEMENTS:
                problems.append(f"block {i}: context has {len(elements)} elements (1..{MAX_CONTEXT_ELEMENTS})")
            for element in elements:
                if not 0 < slack_len(element.get("text", "")) <= MAX_TEXT:
                    problems.append(f"block {i}: context text has {slack_len(element.get('text', ''))} chars")
        elif kind != "divider":
            problems.append(f"block {i}: unexpected block type {kind!r}")
    return problems
