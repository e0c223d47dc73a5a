"""Episodes of incident rows as detection compares them, shared by the slice search
(``run_detection``) and the segments a leading metric points at (``follows``). The rows
themselves are ``monitor.incident.Incident.detected(...).to_row()``."""
from __future__ import annotations

import datetime as dt

from monitor.incident import Incident


def detected_row(metric, segment: dict[str, str], **finding) -> dict:
    """The incidents-table row of one finding (``Incident.detected``), without the fields ``_write`` fills in."""
    return Incident.detected(metric, segment, **finding).to_row()


def same_episode(a: dict, b: dict) -> bool:
    """Two incident rows of one direction whose spans overlap (an open one lasts on)."""
    return (a["direction"] == b["direction"] and a["start_ts"] < (b["end_ts"] or dt.datetime.max)
            and b["start_ts"] < (a["end_ts"] or dt.datetime.max))


def lies_within(segment: dict[str, str], around: dict[str, str]) -> bool:
    """``segment`` fixes every value ``around`` fixes (GB & android & card lies within GB)."""
    return all(segment.get(k) == v for k, v in around.items())
