"""A link, in words, once for every surface (alert, explain, dashboard, report).

>>> import datetime as dt
>>> link = {"kind": "rule", "title": "R-142 tighten BIN velocity", "scope": {"payment_method": "card"},
...         "lag_seconds": 3 * 3600, "during": False, "ts": dt.datetime(2026, 8, 11, 3), "end_ts": None}
>>> describe_link(link)
"3 h after rule 'R-142 tighten BIN velocity' on payment_method=card"
>>> describe_link({**link, "lag_seconds": -1800, "scope": {}})
"30 min before rule 'R-142 tighten BIN velocity' (everywhere), within the start's uncertainty"
>>> describe_link({**link, "scope_match": "slice below", "matched": {"payment_method": "card"}})
"its slice payment_method=card started 3 h after rule 'R-142 tighten BIN velocity' on payment_method=card"
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from monitor.slices import slice_label


def format_lag(seconds: float) -> str:
    """'3 h', '45 min', '2 days' -- how far apart, for people."""
    seconds = abs(seconds)
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def event_phrase(link: dict[str, Any]) -> str:
    """"rule 'R-142 ...' on payment_method=card" (with its window for a ranged event)."""
    scope = link.get("scope") or {}
    where = f" on {slice_label(scope)}" if scope else " (everywhere)"
    text = f"{link.get('kind')} '{link.get('title')}'{where}"
    end = link.get("end_ts")
    if end is not None:
        text += f", {_when(link['ts'])} to {_when(end)}"
    return text


def describe_link(link: dict[str, Any]) -> str:
    """"3 h after rule 'R-142 tighten BIN velocity' on payment_method=card"."""
    if link.get("scope_match") == "slice below":  # the timing is the slice incident's, not the total's
        below = slice_label(link.get("matched") or {}) or "a slice"
        return f"its slice {below} started " + describe_link({**link, "scope_match": "slice"})
    lag = float(link.get("lag_seconds") or 0.0)
    phrase = event_phrase(link)
    if link.get("during"):
        return f"during {phrase}"
    if lag < 0:
        # the start is a change point's estimate: a little before the change is still "at" it
        return f"{format_lag(lag)} before {phrase}, within the start's uncertainty"
    if lag == 0:
        return f"at {phrase}"
    return f"{format_lag(lag)} after {phrase}"


def _when(ts) -> str:
    if isinstance(ts, str):
        ts = dt.datetime.fromisoformat(ts)
    return f"{ts:%Y-%m-%d}" if (ts.hour, ts.minute) == (0, 0) else f"{ts:%Y-%m-%d %H:%M}"
