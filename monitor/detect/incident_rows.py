"""Incident rows as detection writes them to the store, shared by the slice search
(``run_detection``) and the segments a leading metric points at (``follows``)."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import math

import numpy as np

from monitor.catalog import Metric
from monitor.slices import slice_label


def incident_id(metric: str, label: str, start: dt.datetime) -> str:
    raw = f"{metric}|{label}|{start.isoformat()}"
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def incident_row(metric: Metric, segment: dict[str, str], *, start: dt.datetime, end: dt.datetime | None,
                 last_ts: dt.datetime, direction: str, kind: str, baseline: float, observed: float,
                 relative_change: float, score: float, resolution: str | None, why: dict) -> dict:
    """One row of the incidents table (without the fields ``_write`` fills in); ``end``
    None = still open, and then there is no resolution."""
    label = slice_label(segment)
    return {
        "incident_id": incident_id(metric.name, label, start),
        "metric": metric.name, "slice": label, "slice_json": json.dumps(segment, sort_keys=True),
        "parent_id": None, "start_ts": start, "end_ts": end, "last_ts": last_ts,
        "direction": direction, "kind": kind,
        "baseline": finite_or_none(baseline), "observed": finite_or_none(observed),
        "relative_change": finite_or_none(relative_change), "score": float(score),
        "severity": metric.severity, "status": "open" if end is None else "resolved",
        "resolution": None if end is None else resolution,
        "why_json": json.dumps(why, default=_json_default, sort_keys=True),
    }


def same_episode(a: dict, b: dict) -> bool:
    """Two incident rows of one direction whose spans overlap (an open one lasts on)."""
    return (a["direction"] == b["direction"] and a["start_ts"] < (b["end_ts"] or dt.datetime.max)
            and b["start_ts"] < (a["end_ts"] or dt.datetime.max))


def lies_within(segment: dict[str, str], around: dict[str, str]) -> bool:
    """``segment`` fixes every value ``around`` fixes (GB & android & card lies within GB)."""
    return all(segment.get(k) == v for k, v in around.items())


def finite_or_none(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)
