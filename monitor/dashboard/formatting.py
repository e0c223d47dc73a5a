"""What only the dashboard shows: severities, labels, axes. Values, changes and times read as
everywhere else (``monitor.format``, re-exported here for the pages)."""
from __future__ import annotations

from monitor.format import (MISSING, format_delta, format_difference, format_duration,  # noqa: F401
                            format_relative, format_share, format_timestamp, format_value, is_missing)
from monitor.slices import slice_text  # noqa: F401  (re-exported for the pages; labels live in monitor.slices)

SEVERITY_RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1}
SEVERITY_COLOR = {"critical": "red", "high": "orange", "medium": "yellow", "low": "gray"}
# Text colours for tables (CSS), readable on white.
SEVERITY_CSS = {"critical": "#b3261e", "high": "#d35400", "medium": "#a67c00", "low": "#607080"}
SMALL_SEGMENTS = "other (small segments)"
LABELS = {"true_positive": "true positive", "false_alarm": "false alarm", "expected": "expected"}


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
