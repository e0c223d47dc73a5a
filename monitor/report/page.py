"""The report as one self-contained HTML file: inline CSS and inline SVG charts, no script, no network.

Sections, in reading order: the headline counts, incidents of the day (new,
ongoing, resolved; each with its attribution and a chart), every metric's day
(value, day over day, week over week, vs baseline, sparkline), the segments
that moved most (including those below the alert threshold), data health and
alert quality. Numbers carry their exact value in ``data-value`` attributes so
scripts and tests can read them without parsing the formatting.
"""
from __future__ import annotations

import hashlib
from html import escape

from monitor.format import format_delta, format_rate, format_relative, format_share, format_timestamp, format_value
from monitor.report import charts, wording
from monitor.report.model import CATEGORIES, IncidentView, MetricDay, Mover, ReportData

CATEGORY_TITLES = {"new": "New", "ongoing": "Ongoing", "resolved": "Resolved"}
CATEGORY_HELP = {
    "new": "started on the report day",
    "ongoing": "started earlier, still anomalous or open at the end of the day",
    "resolved": "ended on the report day",
}
LABELS = {"true_positive": "true positive", "false_alarm": "false alarm", "expected": "expected"}

CSS = """
:root{--fg:#1f2933;--muted:#616e7c;--line:#e4e7eb;--bad:#c62828;--good:#2e7d32;--bg2:#f5f7fa}
*{box-sizing:border-box}
body{font:14px/1.45 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:var(--fg);
max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px;padding-bottom:4px;border-bottom:2px solid var(--line)}
h3{font-size:15px;margin:18px 0 6px}
.sub,.note{color:var(--muted)}.note{font-size:12px}
nav a{margin-right:14px}
.kpis{display:flex;gap:12px;flex-wrap:wrap;margin:16px 0}
.kpi{background:var(--bg2);border-radius:6px;padding:10px 14px;min-width:130px}
.kpi b{display:block;font-size:22px}
table{border-collapse:collapse;width:100%;margin:6px 0 10px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:middle}
th{font-size:12px;color:var(--muted);font-weight:600}
td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
.bad{color:var(--bad)}.good{color:var(--good)}
.badge{display:inline-block;border-radius:3px;padding:0 6px;font-size:11px;font-weight:700;text-transform:uppercase;
color:#fff;background:#7b8794}
.sev-critical{background:#8e0000}.sev-high{background:#c62828}.sev-medium{background:#ef6c00}.sev-low{background:#7b8794}
.tag{display:inline-block;border:1px solid var(--line);border-radius:3px;padding:0 5px;font-size:11px;color:var(--muted)}
article.incident{border:1px solid var(--line);border-left:4px solid #7b8794;border-radius:6px;padding:10px 14px;margin:10px 0}
article.incident.critical,article.incident.high{border-left-color:var(--bad)}
article.incident.medium{border-left-color:#ef6c00}
.incident .head{font-size:15px}.incident .meta{color:var(--muted);font-size:12px;margin:2px 0 6px}
.explain{background:var(--bg2);border-radius:4px;padding:6px 10px;margin:6px 0}
.explain table{margin:4px 0 0}
.chart svg{display:block;max-width:100%;height:auto}
td.spark svg{display:block}
ul.issues li{margin:2px 0}
code{font-size:12px}
"""


def render_html(data: ReportData) -> str:
    svgs = charts.render_all(_chart_specs(data))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(data.title)} - {data.date.isoformat()}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        _header(data),
        _incidents(data, svgs),
        _metrics(data, svgs),
        _movers(data),
        _health(data),
        _quality(data),
        _footer(data),
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


# -- header ---------------------------------------------------------------------------------------
def _header(data: ReportData) -> str:
    counts = data.counts()
    slices = sum(len(i.children) for c in CATEGORIES for i in data.incidents.get(c, ()))
    overall = data.quality.overall
    moving = sum(1 for m in data.metrics if m.baseline.relative is not None and abs(m.baseline.relative) >= 0.1)
    kpis = [
        (counts["new"], "new incidents"), (counts["ongoing"], "ongoing"), (counts["resolved"], "resolved"),
        (moving, "metrics ±10% vs baseline"), (data.health.issues, "data health issues"),
        (format_share(overall.precision), f"alert precision, {_days(data.quality)} days"),
    ]
    cards = "".join(f'<div class="kpi"><b>{escape(str(v))}</b>{escape(label)}</div>' for v, label in kpis)
    slice_note = f" (plus {slices} slice incident{'s' if slices != 1 else ''} listed under them)" if slices else ""
    return (
        f'<header><h1>{escape(data.title)} - {data.date.isoformat()}</h1>'
        f'<p class="sub">{escape(data.project)} · {wording.long_date(data.date)} · {len(data.metrics)} metrics · '
        f"baseline = the {data.baseline_days} days before{escape(slice_note)}</p>"
        f'<div class="kpis">{cards}</div>'
        '<nav><a href="#incidents">Incidents</a><a href="#metrics">Metrics</a><a href="#movers">Top movers</a>'
        '<a href="#health">Data health</a><a href="#quality">Alert quality</a></nav></header>'
    )


# -- incidents ------------------------------------------------------------------------------------
def _chart_specs(data: ReportData) -> dict[str, dict]:
    """Every chart of the page by its key (also the prefix of its SVG ids): sparklines, then incidents."""
    infos = {m.metric.name: m.metric for m in data.metrics}
    specs = {}
    for day in data.metrics:
        spec = charts.sparkline_spec(day)
        if spec is not None:
            specs[f"s-{day.metric.name}"] = spec
    for category in CATEGORIES:
        for incident in data.incidents.get(category, ()):
            info = infos.get(incident.metric)
            if incident.series and info is not None:
                spec = charts.incident_spec(incident, unit=info.unit, grain=info.grain, day=data.date)
                if spec is not None:
                    specs[_incident_key(incident)] = spec
    return specs


def _incident_key(incident: IncidentView) -> str:
    return "i-" + hashlib.sha1(incident.incident_id.encode()).hexdigest()[:12]


def _incidents(data: ReportData, svgs: dict[str, str]) -> str:
    units = {m.metric.name: m.metric for m in data.metrics}
    out = ['<section id="incidents"><h2>Incidents</h2>']
    for category in CATEGORIES:
        listed = data.incidents.get(category, ())
        out.append(f'<h3 id="incidents-{category}">{CATEGORY_TITLES[category]} ({len(listed)})'
                   f' <span class="note">{CATEGORY_HELP[category]}</span></h3>')
        if not listed:
            out.append('<p class="note">None.</p>')
        for incident in listed:
            out.append(_incident(incident, data, units.get(incident.metric), svgs.get(_incident_key(incident))))
    expected = [i for i in data.all_incidents() if i.expected]
    if expected:
        out.append(f'<h3 id="incidents-expected">Expected changes ({len(expected)})'
                   ' <span class="note">started inside a planned event\'s window: recorded, not paged</span></h3><ul>')
        out += [f"<li>{escape(units[i.metric].title if i.metric in units else i.metric)} · {escape(i.where)} · "
                f"{escape(i.expected)}</li>" for i in expected]
        out.append("</ul>")
    out.append("</section>")
    return "\n".join(out)


def _incident(incident: IncidentView, data: ReportData, info, svg: str | None) -> str:
    unit = info.unit if info else "count"
    grain = info.grain if info else "day"
    title = info.title if info else incident.metric
    link = wording.incident_link(data.dashboard_url, incident.incident_id)
    name = f'<a href="{escape(link)}">{escape(title)}</a>' if link else escape(title)
    meta = [f"{incident.kind.replace('_', ' ')}", wording.incident_span(incident, data.date, grain),
            wording.incident_status(incident, grain), f"score {incident.score:.1f}"]
    if incident.label:
        meta.append(f"labelled {LABELS.get(incident.label, incident.label)}")
    if incident.acked_by:
        meta.append(f"acked by {incident.acked_by}")
    if incident.expected:
        meta.append(f"{incident.expected} (did not page)")
    meta.append(f"id {incident.incident_id}")
    out = [
        f'<article class="incident {escape(incident.severity)}" id="incident-{escape(incident.incident_id)}" '
        f'data-incident="{escape(incident.incident_id)}" data-category="{incident.category}">',
        f'<div class="head">{_severity(incident.severity)} <b>{name}</b> · {escape(incident.where)} · '
        f'<span class="{wording.tone(incident.relative_change or (1 if incident.direction == "up" else -1), info) if info else ""}">'
        f"{escape(wording.incident_change(incident, unit))}</span></div>",
        f'<div class="meta">{escape(" · ".join(meta))}</div>',
        _explanation(incident, unit),
    ]
    if incident.events:
        out.append('<div class="meta events">Our changes before it: '
                   + escape(" · ".join(incident.events)) + "</div>")
    if svg:
        out.append(f'<div class="chart">{svg}</div>')
    if incident.children:
        out.append('<table class="children"><thead><tr><th>Slice incident</th><th>When</th><th>Change</th>'
                   "<th>Severity</th><th>Status</th><th>Top segment</th><th>Id</th></tr></thead><tbody>")
        for child in incident.children:
            top = child.explanation.segments[0].label if child.explanation and child.explanation.segments else ""
            child_link = wording.incident_link(data.dashboard_url, child.incident_id)
            where = f'<a href="{escape(child_link)}">{escape(child.where)}</a>' if child_link else escape(child.where)
            out.append(
                f'<tr data-incident="{escape(child.incident_id)}" data-category="{child.category}"><td>{where}</td>'
                f"<td>{escape(child.category)}, {escape(wording.incident_span(child, data.date, grain))}</td>"
                f"<td>{escape(wording.incident_change(child, unit))}</td><td>{_severity(child.severity)}</td>"
                f"<td>{escape(wording.incident_status(child, grain))}</td><td>{escape(top)}</td>"
                f"<td><code>{escape(child.incident_id)}</code></td></tr>")
        out.append("</tbody></table>")
    out.append("</article>")
    return "\n".join(out)


def _explanation(incident: IncidentView, unit: str) -> str:
    e = incident.explanation
    if e is None:
        return '<div class="explain note">No attribution stored for this incident yet.</div>'
    out = ['<div class="explain">']
    if e.summary:
        out.append(f"<div>{escape(e.summary)}</div>")
    split = wording.mix_rate(e)
    if split:
        out.append(f"<div>Mix vs rate: <b>{escape(split)}</b></div>")
    if e.segments:
        typed = any(s.change_type for s in e.segments)
        out.append("<table><thead><tr><th>Top attributed segment</th><th>Explains</th><th>Before</th><th>After</th>"
                   + ("<th>Moved by</th>" if typed else "") + "</tr></thead><tbody>")
        for s in e.segments:
            out.append(f"<tr><td>{escape(s.label)}</td><td class=\"num\">{escape(format_share(s.share))}</td>"
                       f'<td class="num">{escape(format_value(s.before, unit=unit))}</td>'
                       f'<td class="num">{escape(format_value(s.after, unit=unit))}</td>'
                       + (f"<td>{escape(s.change_type or '')}</td>" if typed else "") + "</tr>")
        out.append("</tbody></table>")
    if e.baseline_label:
        out.append(f'<div class="note">Baseline: {escape(e.baseline_label)}</div>')
    out.append("</div>")
    return "\n".join(out)


def _severity(severity: str) -> str:
    return f'<span class="badge sev-{escape(severity)}">{escape(severity)}</span>'


# -- metrics --------------------------------------------------------------------------------------
def _metrics(data: ReportData, svgs: dict[str, str]) -> str:
    out = ['<section id="metrics"><h2>Metrics</h2>',
           f'<p class="note">Value of the day (hourly metrics: summed over the day\'s buckets, rates as sum of '
           f"numerators over sum of denominators); baseline = the {data.baseline_days} days before (rates pooled, "
           "counts as a daily mean, dashed line in the trend); the dot is the report day, red when it has incidents.</p>",
           "<table><thead><tr><th>Metric</th><th>Value</th><th>Day over day</th><th>Week over week</th>"
           f"<th>vs {data.baseline_days}-day baseline</th><th>Trend</th><th>Top movers</th><th>Incidents</th>"
           "</tr></thead><tbody>"]
    for day in data.metrics:
        out.append(_metric_row(day, data, svgs.get(f"s-{day.metric.name}")))
    out.append("</tbody></table></section>")
    return "\n".join(out)


def _metric_row(day: MetricDay, data: ReportData, svg: str | None) -> str:
    m = day.metric
    link = wording.metric_link(data.dashboard_url, m.name)
    name = f'<a href="{escape(link)}">{escape(m.title)}</a>' if link else escape(m.title)
    who = " · ".join(x for x in (m.team, m.owner) if x)
    notes = [] if m.in_catalog else ["definition file missing or invalid"]
    if day.value is not None and day.buckets < day.expected_buckets:
        notes.append(f"{day.buckets}/{day.expected_buckets} buckets")
    spark = svg or '<span class="note">no data</span>'
    movers = "<br>".join(
        f'<span class="{wording.tone(mv.contribution, m)}">{escape(mv.segment)} {escape(format_delta(mv.contribution, unit=m.unit))}</span>'
        for mv in day.movers) or '<span class="note">-</span>'
    incidents = (f'<a href="#incidents">{day.incidents}</a>' if day.incidents else "0")
    return (
        f'<tr data-metric="{escape(m.name)}"><td>{name}<br><span class="note"><code>{escape(m.name)}</code>'
        f"{' · ' + escape(who) if who else ''}{' · ' + escape(', '.join(notes)) if notes else ''}</span></td>"
        f'<td class="num value" data-value="{wording.number_attr(day.value)}"><b>{escape(format_value(day.value, unit=m.unit))}</b></td>'
        + _change_cell(day.day_before, m, "dod") + _change_cell(day.week_before, m, "wow")
        + _change_cell(day.baseline, m, "baseline")
        + f'<td class="spark">{spark}</td><td class="movers">{movers}</td><td class="num">{incidents}</td></tr>'
    )


def _change_cell(change, metric, name: str) -> str:
    title = f"reference {format_value(change.reference, unit=metric.unit)}"
    return (f'<td class="num {name} {wording.tone(change.absolute, metric)}" data-reference="{wording.number_attr(change.reference)}" '
            f'data-relative="{wording.number_attr(change.relative)}" title="{escape(title)}">'
            f"{escape(wording.arrow(change.absolute))} {escape(wording.change(change, metric.unit))}"
            f'<br><span class="note">from {escape(format_value(change.reference, unit=metric.unit))}</span></td>')


# -- movers ---------------------------------------------------------------------------------------
def _movers(data: ReportData) -> str:
    infos = {m.metric.name: m.metric for m in data.metrics}
    out = ['<section id="movers"><h2>Top movers by segment</h2>',
           f'<p class="note">One-dimension segments ranked by their effect on their metric\'s total, report day vs '
           f"the {data.baseline_days}-day baseline, whether or not an alert fired. For rates the effect is split into "
           "rate (the segment's own rate moved) and mix (its share of the volume moved); a segment's effects over "
           "one dimension add up to the total's change.</p>"]
    if not data.movers:
        out.append('<p class="note">No segment moved (or no baseline yet).</p></section>')
        return "\n".join(out)
    out.append("<table><thead><tr><th>Metric</th><th>Segment</th><th>Before</th><th>After</th><th>Share before → after</th>"
               "<th>Effect on total</th><th>of total</th><th>Driver</th><th>Alerted</th></tr></thead><tbody>")
    for mv in data.movers:
        out.append(_mover_row(mv, infos[mv.metric], data))
    out.append("</tbody></table></section>")
    return "\n".join(out)


def _mover_row(mv: Mover, info, data: ReportData) -> str:
    link = wording.metric_link(data.dashboard_url, mv.metric, mv.segment)
    seg = f'<a href="{escape(link)}">{escape(mv.segment)}</a>' if link else escape(mv.segment)
    return (
        f'<tr data-metric="{escape(mv.metric)}" data-segment="{escape(mv.segment)}"><td>{escape(info.title)}</td>'
        f"<td>{seg}</td>"
        f'<td class="num">{escape(format_value(mv.before, unit=info.unit))}</td>'
        f'<td class="num">{escape(format_value(mv.after, unit=info.unit))}</td>'
        f'<td class="num">{escape(format_rate(mv.share_before))} → {escape(format_rate(mv.share_after))}</td>'
        f'<td class="num {wording.tone(mv.contribution, info)}" data-value="{wording.number_attr(mv.contribution)}">'
        f"{escape(format_delta(mv.contribution, unit=info.unit))}</td>"
        f'<td class="num">{escape(format_relative(mv.impact))}</td>'
        f"<td>{escape(mv.driver or '')}</td><td>{'yes' if mv.in_incident else 'no'}</td></tr>"
    )


# -- data health ----------------------------------------------------------------------------------
def _health(data: ReportData) -> str:
    h = data.health
    grains = {m.metric.name: m.metric.grain for m in data.metrics}
    complete = sum(1 for f in h.freshness if f.complete)
    out = ['<section id="health"><h2>Data health</h2>',
           f"<p>Report day computed for <b>{complete} of {len(h.freshness)}</b> metrics.</p>"]
    if h.incomplete:
        out.append("<h3>Not computed through the report day</h3><table><thead><tr><th>Metric</th>"
                   "<th>Computed until</th><th>Last successful run</th></tr></thead><tbody>")
        for f in h.incomplete:
            until = format_timestamp(f.computed_until, grain=grains.get(f.metric, "hour")) if f.computed_until else "never"
            out.append(f'<tr data-metric="{escape(f.metric)}"><td><code>{escape(f.metric)}</code></td>'
                       f"<td>{escape(until)}</td>"
                       f"<td>{escape(format_timestamp(f.last_success, grain='hour'))}</td></tr>")
        out.append("</tbody></table>")
    if h.failed_runs:
        out.append("<h3>Failed runs (windows in the last 7 days)</h3><table><thead><tr><th>Metric</th><th>Failures</th>"
                   "<th>Not fixed by a later run</th><th>Windows</th><th>Last error</th></tr></thead><tbody>")
        for f in h.failed_runs:
            out.append(f'<tr data-metric="{escape(f.metric)}"><td><code>{escape(f.metric)}</code></td>'
                       f'<td class="num">{f.failures}</td><td class="num {"bad" if f.unfixed else ""}">{f.unfixed}</td>'
                       f"<td>{escape(format_timestamp(f.first_window, grain='hour'))} to {escape(format_timestamp(f.last_window, grain='hour'))}</td>"
                       f"<td>{escape(f.last_error)}</td></tr>")
        out.append("</tbody></table>")
    issues = []
    for s in h.stale:
        issues.append(f"<code>{escape(s.metric)}</code>: definition changed since its history was computed "
                      f"({s.updated_at:%Y-%m-%d %H:%M}); stored numbers are stale until "
                      f"<code>monitor backfill --metric {escape(s.metric)}</code> runs.")
    for name in h.never_computed:
        issues.append(f"<code>{escape(name)}</code>: in the catalog but never computed.")
    for name in h.not_in_catalog:
        issues.append(f"<code>{escape(name)}</code>: history in the store but no valid definition file.")
    for problem in h.catalog_problems:
        issues.append(f"Catalog: {escape(problem)}")
    if issues:
        out.append("<h3>Definitions</h3><ul class=\"issues\">" + "".join(f"<li>{i}</li>" for i in issues) + "</ul>")
    if not h.issues:
        out.append('<p class="good">All clear: every metric computed, no failed runs, no stale definitions.</p>')
    out.append("</section>")
    return "\n".join(out)


# -- alert quality --------------------------------------------------------------------------------
def _quality(data: ReportData) -> str:
    q = data.quality
    out = ['<section id="quality"><h2>Alert quality</h2>',
           f'<p class="note">Incidents that started {q.start.isoformat()} to {q.end.isoformat()} ({_days(q)} days), '
           "with the labels given in the dashboard. Precision = true positives / (true positives + false alarms); "
           "'expected' marks real changes such as holidays or our own rule changes.</p>"]
    if not q.metrics:
        out.append('<p class="note">No incidents in this period.</p></section>')
        return "\n".join(out)
    out.append("<table><thead><tr><th>Metric</th><th>Incidents</th><th>True positive</th><th>False alarm</th>"
               "<th>Expected</th><th>Unlabelled</th><th>Precision</th></tr></thead><tbody>")
    for m in (*q.metrics, q.overall):
        label = "<b>All metrics</b>" if m.metric == "all" else f"<code>{escape(m.metric)}</code>"
        out.append(f'<tr data-metric="{escape(m.metric)}"><td>{label}</td><td class="num">{m.incidents}</td>'
                   f'<td class="num">{m.true_positive}</td><td class="num">{m.false_alarm}</td>'
                   f'<td class="num">{m.expected}</td><td class="num">{m.incidents - m.labelled}</td>'
                   f'<td class="num precision" data-value="{wording.number_attr(m.precision)}">'
                   f"{escape(format_share(m.precision))}</td></tr>")
    out.append("</tbody></table>")
    if q.noisiest:
        out.append("<h3>Noisiest alerts</h3><table><thead><tr><th>Metric</th><th>Slice</th><th>Incidents</th>"
                   "<th>False alarms</th><th>True positive</th><th>Expected</th></tr></thead><tbody>")
        for n in q.noisiest:
            out.append(f'<tr data-metric="{escape(n.metric)}"><td><code>{escape(n.metric)}</code></td>'
                       f"<td>{escape(n.slice or 'total')}</td><td class=\"num\">{n.incidents}</td>"
                       f'<td class="num">{n.false_alarm}</td><td class="num">{n.true_positive}</td>'
                       f'<td class="num">{n.expected}</td></tr>')
        out.append("</tbody></table>")
        out.append('<p class="note">Frequent false alarms: raise the metric\'s detect.min_volume or sensitivity, or '
                   "add a silence for a known cause.</p>")
    out.append("</section>")
    return "\n".join(out)


def _footer(data: ReportData) -> str:
    return (f'<footer class="note"><p>{escape(data.project)} · report for {data.date.isoformat()} · built from the '
            "metric store; the same store and day always give this same page.</p></footer>")


def _days(q) -> int:
    return (q.end - q.start).days + 1

