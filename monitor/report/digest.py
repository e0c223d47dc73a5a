"""The report as text: a Markdown file (the whole report, without charts) and a short chat digest.

The digest is what Slack shows: the headline counts, the incidents to look at,
the biggest moves, data problems and the link to the HTML. It uses only
``*bold*``, bullets and bare URLs, which read the same in Slack and a terminal.
Values from the data (slices, segments) sit in code spans and other free text
cannot format (``monitor.alert.mrkdwn``), so a dimension value cannot restyle it.
"""
from __future__ import annotations

from monitor.alert.mrkdwn import neutral, span
from monitor.format import format_delta, format_relative, format_share, format_value
from monitor.report import wording
from monitor.report.model import CATEGORIES, IncidentView, MetricInfo, ReportData

DIGEST_INCIDENTS = 5
DIGEST_MOVES = 3


def render_markdown(data: ReportData, *, html_url: str | None = None) -> str:
    infos = {m.metric.name: m.metric for m in data.metrics}
    counts = data.counts()
    lines = [f"# {data.title} - {data.date.isoformat()}", "",
             f"{data.project} · {wording.weekday(data.date)} · {len(data.metrics)} metrics · "
             f"{counts['new']} new, {counts['ongoing']} ongoing, {counts['resolved']} resolved incidents · "
             f"{data.health.issues} data health issue(s)"]
    if html_url:
        lines += ["", f"Full report with charts: {html_url}"]

    lines += ["", "## Incidents"]
    for category in CATEGORIES:
        listed = data.incidents.get(category, ())
        lines += ["", f"### {category.capitalize()} ({len(listed)})", ""]
        if not listed:
            lines.append("None.")
        for incident in listed:
            lines += _incident_lines(incident, infos.get(incident.metric), data)

    expected = [i for i in data.all_incidents() if i.expected]
    if expected:
        lines += ["", f"### Expected changes ({len(expected)})", "",
                  "Started inside a planned event's window: recorded, not paged.", ""]
        lines += [f"- {_title(i, infos)} ({i.where}): {i.expected}" for i in expected]

    lines += ["", "## Metrics", "",
              f"| Metric | Value | Day over day | Week over week | vs {data.baseline_days}-day baseline | Top mover | Incidents |",
              "|---|---:|---:|---:|---:|---|---:|"]
    for day in data.metrics:
        m = day.metric
        mover = f"{day.movers[0].segment} {format_delta(day.movers[0].contribution, unit=m.unit)}" if day.movers else ""
        lines.append("| " + " | ".join(_cell(x) for x in (
            f"{m.title} (`{m.name}`)", format_value(day.value, unit=m.unit), wording.change(day.day_before, m.unit),
            wording.change(day.week_before, m.unit), wording.change(day.baseline, m.unit), mover, str(day.incidents))) + " |")

    lines += ["", "## Top movers by segment", ""]
    if data.movers:
        lines += ["| Metric | Segment | Before | After | Effect on total | of total | Driver | Alerted |",
                  "|---|---|---:|---:|---:|---:|---|---|"]
        for mv in data.movers:
            unit = infos[mv.metric].unit
            lines.append("| " + " | ".join(_cell(x) for x in (
                mv.metric, mv.segment, format_value(mv.before, unit=unit), format_value(mv.after, unit=unit),
                format_delta(mv.contribution, unit=unit), format_relative(mv.impact), mv.driver or "",
                "yes" if mv.in_incident else "no")) + " |")
    else:
        lines.append("No segment moved (or no baseline yet).")

    lines += ["", "## Data health", ""] + [f"- {x}" for x in _health_lines(data)]

    q = data.quality
    lines += ["", "## Alert quality", "",
              f"Incidents that started {q.start.isoformat()} to {q.end.isoformat()}; "
              "precision = true positives / (true positives + false alarms).", ""]
    if q.metrics:
        lines += ["| Metric | Incidents | True positive | False alarm | Expected | Unlabelled | Precision |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for m in (*q.metrics, q.overall):
            lines.append("| " + " | ".join(_cell(x) for x in (
                "all metrics" if m.metric == "all" else m.metric, str(m.incidents), str(m.true_positive),
                str(m.false_alarm), str(m.expected), str(m.incidents - m.labelled), format_share(m.precision))) + " |")
        if q.noisiest:
            lines += ["", "Noisiest alerts:", ""]
            lines += [f"- {n.metric} ({n.slice or 'total'}): {n.incidents} incidents, {n.false_alarm} false alarm(s)"
                      for n in q.noisiest]
    else:
        lines.append("No incidents in this period.")
    return "\n".join(lines) + "\n"


def render_digest(data: ReportData, *, html_url: str | None = None) -> str:
    """A few lines for Slack: what to look at today, and the link to the full report."""
    infos = {m.metric.name: m.metric for m in data.metrics}
    counts = data.counts()
    precision = data.quality.overall.precision
    head = (f"*{neutral(data.title)} - {data.date.isoformat()}*\n"
            f"Incidents: {counts['new']} new, {counts['ongoing']} ongoing, {counts['resolved']} resolved · "
            f"data health: {data.health.issues or 'no'} issue{'s' if data.health.issues != 1 else ''}"
            + (f" · alert precision {format_share(precision)} ({(data.quality.end - data.quality.start).days + 1}d)"
               if precision is not None else ""))
    lines = [head]
    shown = [i for c in ("new", "ongoing") for i in data.incidents.get(c, ())]
    if shown:
        lines.append("")
        for incident in shown[:DIGEST_INCIDENTS]:
            lines.append("• " + _incident_line(incident, infos.get(incident.metric), data))
        if len(shown) > DIGEST_INCIDENTS:
            lines.append(f"• and {len(shown) - DIGEST_INCIDENTS} more")
    if counts["resolved"]:
        names = ", ".join(f"{neutral(_title(i, infos))} ({_where(i)})"
                          for i in data.incidents["resolved"][:DIGEST_INCIDENTS])
        lines.append(f"Resolved: {names}" + (" ..." if counts["resolved"] > DIGEST_INCIDENTS else ""))
    moves = sorted((m for m in data.metrics if m.baseline.relative is not None),
                   key=lambda m: (-abs(m.baseline.relative), m.metric.name))[:DIGEST_MOVES]
    if moves:
        lines.append(f"Biggest moves vs {data.baseline_days}-day baseline: " + ", ".join(
            f"{neutral(m.metric.title)} {format_relative(m.baseline.relative)}" for m in moves))
    problems = _health_lines(data, only_problems=True)
    if problems:
        lines.append("Data: " + "; ".join(neutral(p) for p in problems[:3]) + (" ..." if len(problems) > 3 else ""))
    if html_url:
        lines.append(f"Full report: {html_url}")
    return "\n".join(lines) + "\n"


def _incident_lines(incident: IncidentView, info: MetricInfo | None, data: ReportData) -> list[str]:
    unit = info.unit if info else "count"
    grain = info.grain if info else "day"
    link = wording.incident_link(data.dashboard_url, incident.incident_id)
    lines = [f"- **[{incident.severity.upper()}] {_title(incident, {info.name: info} if info else {})}** "
             f"({incident.where}): {wording.incident_change(incident, unit)}, {wording.incident_span(incident, data.date, grain)}, "
             f"{wording.incident_status(incident, grain)}{', labelled ' + incident.label.replace('_', ' ') if incident.label else ''} "
             f"- id `{incident.incident_id}`" + (f" - {link}" if link else "")]
    e = incident.explanation
    if e is not None:
        bits = [e.summary] if e.summary else []
        if e.segments:
            bits.append("top segments: " + ", ".join(
                f"{s.label} ({format_share(s.share)}, {format_value(s.before, unit=unit)} → {format_value(s.after, unit=unit)})"
                for s in e.segments))
        if wording.mix_rate(e):
            bits.append("mix vs rate: " + wording.mix_rate(e))
        lines += [f"  - {b}" for b in bits]
    lines += [f"  - our change: {text}" for text in incident.events]
    if incident.expected:
        lines.append(f"  - {incident.expected}: did not page")
    for child in incident.children:
        lines.append(f"  - slice `{child.where}` ({child.category}): {wording.incident_change(child, unit)}, "
                     f"{child.severity} - id `{child.incident_id}`")
    return lines


def _incident_line(incident: IncidentView, info: MetricInfo | None, data: ReportData) -> str:
    unit = info.unit if info else "count"
    grain = info.grain if info else "day"
    text = (f"[{incident.severity.upper()}] {neutral(info.title if info else incident.metric)} ({_where(incident)}) "
            f"{wording.incident_change(incident, unit)} {wording.incident_span(incident, data.date, grain)}")
    e = incident.explanation
    if e is not None and e.segments:
        text += f" - mostly {span(e.segments[0].label)}"
    if e is not None and e.verdict:
        text += f" ({wording.verdict(e.verdict)})"
    if incident.children:
        text += f" + {len(incident.children)} slice{'s' if len(incident.children) != 1 else ''}"
    if incident.expected:
        text += f" - {neutral(incident.expected)}"
    elif incident.events:
        text += f" - {neutral(incident.events[0])}"
    return text


def _where(incident: IncidentView) -> str:
    return span(incident.slice) if incident.slice else "total"


def _title(incident: IncidentView, infos: dict[str, MetricInfo]) -> str:
    info = infos.get(incident.metric)
    return info.title if info else incident.metric


def _health_lines(data: ReportData, *, only_problems: bool = False) -> list[str]:
    h = data.health
    out = []
    complete = sum(1 for f in h.freshness if f.complete)
    if not only_problems:
        out.append(f"Report day computed for {complete} of {len(h.freshness)} metrics.")
    for f in h.incomplete:
        until = f.computed_until.isoformat(sep=" ", timespec="minutes") if f.computed_until else "never"
        out.append(f"{f.metric}: not computed through the day (computed until {until})")
    for f in h.failed_runs:
        if f.unfixed or not only_problems:
            out.append(f"{f.metric}: {f.failures} failed run(s), {f.unfixed} not fixed; last error: {f.last_error}")
    out += [f"{s.metric}: definition changed since its history was computed (stale)" for s in h.stale]
    out += [f"{n}: never computed" for n in h.never_computed]
    out += [f"{n}: history in the store but no valid definition file" for n in h.not_in_catalog]
    out += [f"catalog: {p}" for p in h.catalog_problems]
    if not only_problems and not h.issues:
        out.append("All clear.")
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
