"""How numbers, changes, times and missing values read on every surface.

One style for the CLI, Slack, the console, the webhook's text fields, the report and the
dashboard (docs/formatting.md shows it as a table):

* missing (None, NaN, NaT, inf): ``n/a``
* a rate (a ``ratio`` metric, or unit ``percent``): a percentage with three significant
  digits, at least one decimal: ``3.45%``, ``12.3%``, ``0.120%``
* a count or other number: thousands separators, no decimals from 100 on or for whole
  numbers, else three significant digits: ``12,345``, ``7``, ``0.25``; currency: ``1,234.50``
* a relative change: signed, one decimal, none from 100%: ``+42.0%``, ``-3.1%``, ``+250%``
* an absolute change: in the metric's unit, percentage points for rates: ``+0.50 pp``, ``+1,204``
* a share of a whole (explained share, size, precision): ``62%``, ``7.0%``; a share compared
  before -> after (a traffic share, the mix evidence) reads as a rate, so a small move shows:
  ``29.7% -> 29.9%``
* a time: ``2026-03-02 06:00`` (times are UTC throughout; messages read outside the product,
  Slack and the console, say so: ``2026-03-02 06:00 UTC``), the date alone for a day-grain
  bucket; a duration: ``45m``, ``26h``, ``3d 4h``

The metric's kind and unit choose the format in one place, :func:`format_value`; a new
metric kind adds its branch there.

>>> format_value(0.0345, kind="ratio")
'3.45%'
>>> format_value(12345.0, kind="sum", unit="count")
'12,345'
>>> format_value(None, kind="ratio")
'n/a'
>>> format_change(0.42, 0.005, kind="ratio")
'+42.0% (+0.50 pp)'
>>> format_share(0.62), format_share(0.07)
('62%', '7.0%')
>>> format_timestamp(dt.datetime(2026, 3, 2), grain="day"), format_timestamp(dt.datetime(2026, 3, 2, 6))
('2026-03-02', '2026-03-02 06:00')
>>> format_duration(dt.timedelta(hours=75))
'3d 3h'
"""
from __future__ import annotations

import datetime as dt
import math
from typing import Any

MISSING = "n/a"


def is_missing(x: Any) -> bool:
    """None, NaN, NaT or an infinite number: nothing to show."""
    if x is None:
        return True
    if isinstance(x, (dt.datetime, dt.date)):
        return x != x  # pandas' NaT is a datetime unequal to itself
    try:
        return not math.isfinite(float(x))
    except (TypeError, ValueError):
        return type(x).__name__ == "NAType"  # pandas' NA, without importing pandas here


def is_rate(*, kind: str = "", unit: str = "") -> bool:
    """Values of this metric are fractions shown as percentages."""
    return unit == "percent" or (kind == "ratio" and unit in ("", "ratio", "percent"))


def format_value(x: Any, *, kind: str = "", unit: str = "") -> str:
    """A metric value as its kind and unit read: rates as percentages, money with cents, counts whole."""
    if is_missing(x):
        return MISSING
    x = float(x)
    if is_rate(kind=kind, unit=unit):
        return format_rate(x)
    if unit == "currency":
        return f"{x:,.2f}"
    return format_number(x)


def format_rate(x: Any) -> str:
    """0.0345 -> '3.45%': three significant digits, at least one decimal.

    >>> format_rate(0.0012), format_rate(0.123), format_rate(0.0)
    ('0.120%', '12.3%', '0.00%')
    """
    if is_missing(x):
        return MISSING
    pct = float(x) * 100
    decimals = 1 if abs(pct) >= 10 else 2 if abs(pct) >= 1 or pct == 0 else 3 if abs(pct) >= 0.1 else 4
    return f"{pct:.{decimals}f}%"


def format_number(x: Any) -> str:
    """12345.6 -> '12,346'; 7.0 -> '7'; 0.254 -> '0.254'."""
    if is_missing(x):
        return MISSING
    x = float(x)
    if abs(x) >= 100 or x.is_integer():
        return f"{x:,.0f}"
    return f"{x:.3g}"


def format_count(n: Any) -> str:
    """A whole count with separators: 1204 -> '1,204'."""
    return MISSING if is_missing(n) else f"{int(round(float(n))):,}"


def format_delta(x: Any, *, kind: str = "", unit: str = "") -> str:
    """An absolute difference in the metric's unit: percentage points for rates.

    >>> format_delta(0.005, kind="ratio"), format_delta(-1204, unit="count")
    ('+0.50 pp', '-1,204')
    """
    if is_missing(x):
        return MISSING
    x = float(x)
    if is_rate(kind=kind, unit=unit):
        pp = x * 100
        return f"{pp:+.2f} pp" if abs(pp) >= 0.01 or pp == 0 else f"{pp:+.4f} pp"
    if unit == "currency":
        return f"{x:+,.2f}"
    return f"{x:+,.0f}" if abs(x) >= 100 or x.is_integer() else f"{x:+.3g}"


def format_difference(before: Any, after: Any, *, kind: str = "", unit: str = "") -> str:
    """``after - before`` as :func:`format_delta` writes it (missing when either is)."""
    if is_missing(before) or is_missing(after):
        return MISSING
    return format_delta(float(after) - float(before), kind=kind, unit=unit)


def format_relative(x: Any) -> str:
    """A relative change: 0.42 -> '+42.0%', 2.5 -> '+250%'."""
    if is_missing(x):
        return MISSING
    pct = float(x) * 100
    return f"{pct:+,.0f}%" if abs(pct) >= 100 else f"{pct:+.1f}%"


def format_change(relative: Any, absolute: Any = None, *, kind: str = "", unit: str = "") -> str:
    """'+42.0%', with the change in points for rates: '+42.0% (+0.50 pp)'; the absolute
    change alone when there is no relative one (the reference was 0)."""
    if is_missing(relative):
        return format_delta(absolute, kind=kind, unit=unit)
    text = format_relative(relative)
    if is_rate(kind=kind, unit=unit) and not is_missing(absolute):
        text += f" ({format_delta(absolute, kind=kind, unit=unit)})"
    return text


def format_share(x: Any) -> str:
    """A part of a whole: 0.62 -> '62%', 0.07 -> '7.0%'."""
    if is_missing(x):
        return MISSING
    pct = float(x) * 100
    return f"{pct:.0f}%" if abs(pct) >= 10 or pct == 0 else f"{pct:.1f}%"


def format_timestamp(ts: Any, *, grain: str = "hour", utc: bool = False) -> str:
    """'2026-03-02 06:00' (' UTC' added with ``utc``); the date alone for a day-grain bucket
    that starts at midnight."""
    if is_missing(ts):
        return MISSING
    if hasattr(ts, "to_pydatetime"):
        ts = ts.to_pydatetime()
    if not isinstance(ts, dt.datetime):
        return f"{ts:%Y-%m-%d}"
    if grain == "day" and ts.hour == 0 and ts.minute == 0:
        return f"{ts:%Y-%m-%d}"
    return f"{ts:%Y-%m-%d %H:%M}" + (" UTC" if utc else "")


def format_duration(delta: dt.timedelta) -> str:
    """'45m', '5h 30m' (minutes under 6 hours), '26h', '3d 4h'."""
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h" + (f" {minutes}m" if minutes and hours < 6 else "")
    days, hours = divmod(hours, 24)
    return f"{days}d" + (f" {hours}h" if hours else "")
