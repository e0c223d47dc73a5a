"""The report's own phrases (dates in words, verdicts, incident spans, arrows), shared by the HTML
page and the digests; numbers, changes and times inside them read as everywhere (``monitor.format``)."""
from __future__ import annotations

import datetime as dt

from monitor.format import (format_change, format_duration, format_relative, format_share, format_timestamp,
                            format_value)
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


def change(c: Change, unit: str) -> str:
    """'+12.3%' (and '+0.15 pp' for rates); the absolute change when the reference is 0."""
    return format_change(c.relative, c.absolute, unit=unit)


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
        parts.append(f"mix {format_share(e.mix_share)} / rate {format_share(e.rate_share)} of the change{cut}")
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


def incident_span(incident: IncidentView, day: dt.date, grain: str) -> str:
    """'since 2026-03-16 (3d)' or '2026-03-16 - 2026-03-18 (2d)', counted up to the end of the report day."""
    day_end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time())
    end = incident.end_ts if incident.end_ts is not None and incident.end_ts <= day_end else None
    if end is None:
        return (f"since {format_timestamp(incident.start_ts, grain=grain)} "
                f"({format_duration(day_end - incident.start_ts)})")
    return (f"{format_timestamp(incident.start_ts, grain=grain)} to {format_timestamp(end, grain=grain)} "
            f"({format_duration(end - incident.start_ts)})")


def incident_status(incident: IncidentView, grain: str) -> str:
    """'open', 'recovered', or for an incident that ended after the report day 'recovered at <end>'."""
    if incident.status != "resolved":
        return incident.status
    text = (incident.resolution or "resolved").replace("_", " ")
    return f"{text} at {format_timestamp(incident.end_ts, grain=grain)}" if incident.category == "ongoing" else text


def incident_change(incident: IncidentView, unit: str) -> str:
    """'▲ +42.0% (0.80% → 1.14%)' from what detection stored."""
    parts = []
    sign = incident.relative_change
    if sign is None and incident.observed is not None and incident.baseline is not None:
        sign = incident.observed - incident.baseline
    head = arrow(sign if sign is not None else (1 if incident.direction == "up" else -1))
    if incident.relative_change is not None:
        parts.append(format_relative(incident.relative_change))
    if incident.baseline is not None or incident.observed is not None:
        parts.append(f"({format_value(incident.baseline, unit=unit)} → {format_value(incident.observed, unit=unit)})")
    return " ".join([head, *parts]).strip() or incident.direction


def incident_link(base: str | None, incident_id: str) -> str | None:
    return incident_url(base, incident_id) if base else None


def metric_link(base: str | None, metric: str, slice_: str = "") -> str | None:
    return metric_url(base, metric, slice_) if base else None


def number_attr(x: float | None) -> str:
    """The exact value for a data-value attribute (12 significant digits; '' when missing)."""
    return "" if x is None else f"{x:.12g}"
