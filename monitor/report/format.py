"""How numbers, changes and times read in the report (shared by the HTML page and the digests)."""
from __future__ import annotations

import datetime as dt

from monitor.links import incident_url, metric_url
from monitor.report.model import Change, IncidentView, MetricInfo


WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")


def weekday(d: dt.date) -> str:
    """English weekday name, independent of the process locale (strftime's %A is not)."""
    return WEEKDAYS[d.weekday()]


def long_date(d: dt.date) -> str:
    """'Friday 20 March 2026', independent of the process locale."""
    return f"{weekday(d)} {d.day} {MONTHS[d.month - 1]} {d.year}"


def value(x: float | None, unit: str) -> str:
    """A metric value: ratios as percentages, counts with separators, currency with cents."""
    if x is None:
        return "n/a"
    if unit == "percent":
        pct = x * 100
        decimals = 1 if abs(pct) >= 10 else 2 if abs(pct) >= 1 or pct == 0 else 3 if abs(pct) >= 0.1 else 4
        return f"{pct:.{decimals}f}%"
    if unit == "currency":
        return f"{x:,.2f}"
    if abs(x) >= 100 or float(x).is_integer():
        return f"{x:,.0f}"
    return f"{x:.3g}"


def delta(x: float | None, unit: str) -> str:
    """A difference in the metric's unit: percentage points for rates."""
    if x is None:
        return "n/a"
    if unit == "percent":
        pp = x * 100
        return f"{pp:+.2f} pp" if abs(pp) >= 0.01 or pp == 0 else f"{pp:+.4f} pp"
    if unit == "currency":
        return f"{x:+,.2f}"
    return f"{x:+,.0f}" if abs(x) >= 100 or float(x).is_integer() else f"{x:+.3g}"


def share(x: float | None) -> str:
    """A fraction as a percentage (shares, precision)."""
    if x is None:
        return "n/a"
    pct = x * 100
    return f"{pct:.0f}%" if abs(pct) >= 10 or pct == 0 else f"{pct:.1f}%"


def relative(x: float | None) -> str:
    if x is None:
        return "n/a"
    pct = x * 100
    return f"{pct:+,.0f}%" if abs(pct) >= 100 else f"{pct:+.1f}%"


def change(c: Change, unit: str) -> str:
    """'+12.3%' (and '+0.15 pp' for rates); the absolute change when the reference is 0."""
    if c.absolute is None:
        return "n/a"
    if c.relative is None:
        return delta(c.absolute, unit)
    text = relative(c.relative)
    return f"{text} ({delta(c.absolute, unit)})" if unit == "percent" else text


VERDICTS = {"rate": "rate change", "mix": "traffic-mix shift", "mixed": "both mix and rate"}


def verdict(text: str | None) -> str:
    """The attribution's mix vs rate verdict in words."""
    if not text:
        return ""
    return VERDICTS.get(text, text.replace("_", " "))


def mix_rate(e) -> str:
    """'rate change: mix 7.0% / rate 93% of the change (cut by country)'."""
    parts = [verdict(e.verdict)] if e.verdict else []
    if e.mix_share is not None or e.rate_share is not None:
        cut = f", cut by {e.split_dimension}" if getattr(e, "split_dimension", None) else ""
        parts.append(f"mix {share(e.mix_share)} / rate {share(e.rate_share)} of the change{cut}")
    return ": ".join(parts)


def arrow(x: float | None) -> str:
    if not x:
        return ""
    return "▲" if x > 0 else "▼"


def tone(x: float | None, metric: MetricInfo) -> str:
    """'bad' when the value moved the way the metric alerts on, 'good' the other way, '' otherwise."""
    if not x or metric.direction == "both":
        return ""
    worse = x > 0 if metric.direction == "up" else x < 0
    return "bad" if worse else "good"


def when(ts: dt.datetime | None, grain: str) -> str:
    if ts is None:
        return "n/a"
    return f"{ts:%Y-%m-%d}" if grain == "day" and ts.hour == 0 and ts.minute == 0 else f"{ts:%Y-%m-%d %H:%M}"


def duration(delta_: dt.timedelta) -> str:
    hours = int(delta_.total_seconds() // 3600)
    if hours < 48:
        return f"{hours}h"
    days, rest = divmod(hours, 24)
    return f"{days}d" + (f" {rest}h" if rest else "")


def incident_span(incident: IncidentView, day: dt.date, grain: str) -> str:
    """'since 2026-03-16 (3d)' or '2026-03-16 - 2026-03-18 (2d)', counted up to the end of the report day."""
    day_end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time())
    end = incident.end_ts if incident.end_ts is not None and incident.end_ts <= day_end else None
    if end is None:
        return f"since {when(incident.start_ts, grain)} ({duration(day_end - incident.start_ts)})"
    return f"{when(incident.start_ts, grain)} to {when(end, grain)} ({duration(end - incident.start_ts)})"


def incident_status(incident: IncidentView, grain: str) -> str:
    """'open', 'recovered', or for an incident that ended after the report day 'recovered at <end>'."""
    if incident.status != "resolved":
        return incident.status
    text = (incident.resolution or "resolved").replace("_", " ")
    return f"{text} at {when(incident.end_ts, grain)}" if incident.category == "ongoing" else text


def incident_change(incident: IncidentView, unit: str) -> str:
    """'▲ +42.0% (0.80% → 1.14%)' from what detection stored."""
    parts = []
    sign = incident.relative_change
    if sign is None and incident.observed is not None and incident.baseline is not None:
        sign = incident.observed - incident.baseline
    head = arrow(sign if sign is not None else (1 if incident.direction == "up" else -1))
    if incident.relative_change is not None:
        parts.append(relative(incident.relative_change))
    if incident.baseline is not None or incident.observed is not None:
        parts.append(f"({value(incident.baseline, unit)} → {value(incident.observed, unit)})")
    return " ".join([head, *parts]).strip() or incident.direction


def incident_link(base: str | None, incident_id: str) -> str | None:
    return incident_url(base, incident_id) if base else None


def metric_link(base: str | None, metric: str, slice_: str = "") -> str | None:
    return metric_url(base, metric, slice_) if base else None


def number_attr(x: float | None) -> str:
    """The exact value for a data-value attribute (12 significant digits; '' when missing)."""
    return "" if x is None else f"{x:.12g}"
