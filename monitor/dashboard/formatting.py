"""How numbers, changes, slices and severities read on the dashboard."""
from __future__ import annotations

import math

import pandas as pd

from monitor.slices import slice_text  # noqa: F401  (re-exported for the pages; labels live in monitor.slices)

SEVERITY_RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1}
SEVERITY_COLOR = {"critical": "red", "high": "orange", "medium": "yellow", "low": "gray"}
# Text colours for tables (CSS), readable on white.
SEVERITY_CSS = {"critical": "#b3261e", "high": "#d35400", "medium": "#a67c00", "low": "#607080"}
SMALL_SEGMENTS = "other (small segments)"
LABELS = {"true_positive": "true positive", "false_alarm": "false alarm", "expected": "expected"}


def is_missing(value) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def format_value(value, unit: str) -> str:
    """1.2345e-2 with unit percent -> '1.23%'; 12345 count -> '12,345'; currency -> '$12.3k'."""
    if is_missing(value) or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    value = float(value)
    if unit == "percent":
        digits = 2 if abs(value) >= 0.001 else 3
        return f"{value * 100:.{digits}f}%"
    if unit == "currency":
        return "$" + _compact(value)
    if abs(value) >= 100_000:
        return _compact(value)
    return f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:,.2f}"


def _compact(value: float) -> str:
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}{suffix}"
    return f"{value:,.2f}" if not float(value).is_integer() else f"{value:,.0f}"


def format_delta(before, after, unit: str) -> str:
    """The absolute change in the metric's unit: '+0.42 pp' for rates, '+1,204' for counts."""
    if is_missing(before) or is_missing(after):
        return "–"
    diff = float(after) - float(before)
    if unit == "percent":
        return f"{diff * 100:+.2f} pp"
    sign = "+" if diff >= 0 else "-"
    return sign + format_value(abs(diff), unit)


def format_relative(change) -> str:
    """0.452 -> '+45.2%'."""
    if is_missing(change) or not math.isfinite(float(change)):
        return "–"
    return f"{float(change) * 100:+.1f}%"


def relative_change(before, after) -> float | None:
    if is_missing(before) or is_missing(after) or float(before) == 0:
        return None
    return float(after) / float(before) - 1.0


def severity_text(severity: str | None) -> str:
    """Plain severity for tables and menus (coloured by the table style)."""
    return severity or ""


def severity_badge(severity: str | None) -> str:
    """Severity as a coloured Streamlit markdown badge."""
    if not severity:
        return ""
    return f":{SEVERITY_COLOR.get(severity, 'gray')}-badge[{severity}]"


def axis_format(unit: str) -> str:
    """d3 format for an Altair axis in this unit."""
    return {"percent": ".2%", "currency": "$,.3~s"}.get(unit, ",.3~s")


def unit_label(unit: str) -> str:
    """Axis title for a unit."""
    return {"percent": "rate (%)", "currency": "amount ($)", "count": "count"}.get(unit, unit)


def timestamp_text(ts, grain: str = "day") -> str:
    if is_missing(ts):
        return "–"
    ts = pd.Timestamp(ts)
    return ts.strftime("%Y-%m-%d %H:%M" if grain == "hour" or (ts.hour or ts.minute) else "%Y-%m-%d (%a)")
