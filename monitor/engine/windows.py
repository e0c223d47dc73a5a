"""Half-open time windows aligned to a metric's grain."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

GRAIN_STEP = {"hour": dt.timedelta(hours=1), "day": dt.timedelta(days=1)}


@dataclass(frozen=True, order=True)
class Window:
    start: dt.datetime
    end: dt.datetime

    def __str__(self) -> str:
        return f"[{self.start:%Y-%m-%d %H:%M}, {self.end:%Y-%m-%d %H:%M})"


def to_naive_utc(ts: dt.datetime) -> dt.datetime:
    """The store's convention: naive datetimes are UTC; aware ones are converted, not relabelled."""
    return ts if ts.tzinfo is None else ts.astimezone(dt.timezone.utc).replace(tzinfo=None)


def floor_to_grain(ts: dt.datetime, grain: str) -> dt.datetime:
    ts = to_naive_utc(ts).replace(second=0, microsecond=0, minute=0)
    return ts if grain == "hour" else ts.replace(hour=0)


def ceil_to_grain(ts: dt.datetime, grain: str) -> dt.datetime:
    floor = floor_to_grain(ts, grain)
    return floor if floor == to_naive_utc(ts) else floor + GRAIN_STEP[grain]


def is_aligned(ts: dt.datetime, grain: str) -> bool:
    return floor_to_grain(ts, grain) == ts


def split_windows(start: dt.datetime, end: dt.datetime, grain: str, chunk_buckets: int) -> list[Window]:
    """[start, end) widened to the grain and cut into chunks of at most chunk_buckets buckets."""
    start, end = floor_to_grain(start, grain), ceil_to_grain(end, grain)
    step = GRAIN_STEP[grain] * max(1, chunk_buckets)
    windows, cursor = [], start
    while cursor < end:
        windows.append(Window(cursor, min(cursor + step, end)))
        cursor += step
    return windows


def parse_when(text: str) -> dt.datetime:
    """A date or datetime given on the command line or in config."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        from monitor.errors import MonitorError

        raise MonitorError(f"{text!r} is not a date or time; use YYYY-MM-DD or YYYY-MM-DDTHH:MM.") from exc
    return to_naive_utc(value)
