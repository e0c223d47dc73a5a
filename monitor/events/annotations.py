"""Events as chart annotations: the ones that apply to a metric's series over a time range.

An event applies to a chart of ``metric`` in ``segment`` when it names no metrics or names this
one, and its scope does not contradict the segment (a PayPal rule is drawn on the total and on
``payment_method=paypal``, not on ``payment_method=card``).
"""
from __future__ import annotations

import datetime as dt

import pandas as pd

from monitor.events.describe import event_phrase
from monitor.events.store import read_events

COLUMNS = ["ts", "end", "kind", "title", "scope", "text", "expected", "url"]


def chart_events(con, metric: str, segment: dict[str, str], *, start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    rows = []
    for event in read_events(con, since=start, until=end):
        if event.metrics and metric not in event.metrics:
            continue
        if any(segment.get(k, v) != v for k, v in event.scope.items()):
            continue
        rows.append({"ts": event.ts, "end": event.end_ts, "kind": event.kind, "title": event.title,
                     "scope": event.scope_label or "everywhere", "text": event_phrase(event.to_dict()),
                     "expected": event.expected, "url": event.url or ""})
    return pd.DataFrame(rows, columns=COLUMNS)
