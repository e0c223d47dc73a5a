"""Stale sources: a metric whose source stopped receiving data.

When the last N computed buckets have no source rows at all, the metric did
not "drop": its feed broke. The scheduler raises a stale-data meta-alert and
pauses detection for the metric instead of opening a false incident;
detection can ask :func:`is_stale` directly.

"No source rows" is read from the stored leaves: a bucket without any leaf
row, or (ratio metrics) whose denominators sum to 0. Only buckets the run log
says were computed count, so a bucket that simply has not run yet is not
evidence of anything.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from monitor.catalog import Metric
from monitor.engine import GRAIN_STEP, floor_to_grain
from monitor.errors import ConfigError
from monitor.store.store import Store, leaves_table

# Buckets without any source rows before a metric counts as stale (a day without a single
# order is a broken feed, an hour can be a quiet night): override with `stale_after`.
DEFAULT_STALE_AFTER = {"day": 1, "hour": 2}


@dataclass(frozen=True)
class Staleness:
    metric: str
    grain: str
    stale: bool
    empty_buckets: int  # computed buckets since the last one with source rows
    threshold: int  # empty buckets that make it stale (0 = check disabled)
    last_data: dt.datetime | None  # start of the last bucket with source rows
    computed_until: dt.datetime | None

    def message(self) -> str:
        return (f"{self.metric}: no source rows for the last {self.empty_buckets} computed {self.grain}(s) "
                f"(last data in the bucket starting {self.last_data:%Y-%m-%d %H:%M} UTC); the source feed looks "
                f"stopped or late, so detection is paused instead of reporting a drop. Once the data has "
                f"landed, recompute those buckets with `monitor backfill --metric {self.metric} --start "
                f"{self.last_data:%Y-%m-%d} --end <today>` (or set a `lookback` so runs pick up late data).")


def parse_stale_after(value) -> int | dict[str, int]:
    """``[scheduler] stale_after``: a number of buckets, or a table by grain and/or metric name."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
            for k, v in value.items()):
        return dict(value)
    raise ValueError("a number of buckets >= 0, or a table like {day = 1, hour = 3, my_metric = 0}")


def stale_threshold(stale_after, metric_name: str, grain: str) -> int:
    """Empty buckets before the metric's source is stale (0 = never), from a parsed ``stale_after``."""
    if isinstance(stale_after, int):
        return stale_after
    table = stale_after or {}
    if metric_name in table:
        return int(table[metric_name])
    if grain in table:
        return int(table[grain])
    return DEFAULT_STALE_AFTER[grain]


def configured_stale_after(config):
    """``[scheduler] stale_after`` of a project config (None: the defaults)."""
    value = config.section("scheduler").get("stale_after")
    if value is None:
        return None
    try:
        return parse_stale_after(value)
    except ValueError as exc:
        raise ConfigError(f"[scheduler] stale_after must be {exc}, got {value!r}") from None


def staleness(store: Store, metric: Metric, now: dt.datetime, *, after: int | None = None,
              settings=None) -> Staleness:
    """How many computed buckets up to `now` have had no source rows (see module doc).

    ``settings``: anything with ``stale_threshold(metric, grain)`` (``SchedulerSettings``)."""
    if after is not None:
        threshold = after
    elif settings is not None:
        threshold = settings.stale_threshold(metric.name, metric.grain)
    else:
        threshold = stale_threshold(None, metric.name, metric.grain)
    computed_until, last_data = _read(store, metric)
    empty = 0
    if computed_until is not None and last_data is not None:
        horizon = min(computed_until, floor_to_grain(now, metric.grain))
        step = GRAIN_STEP[metric.grain]
        empty = max(int((horizon - (last_data + step)) / step), 0)
    return Staleness(metric.name, metric.grain, threshold > 0 and last_data is not None and empty >= threshold,
                     empty, threshold, last_data, computed_until)


def is_stale(store: Store, metric: Metric, now: dt.datetime, *, after: int | None = None,
             config=None) -> bool:
    """True when the metric's source has had no rows for `stale_after` computed buckets.

    ``after`` overrides the threshold; otherwise ``config``'s ``[scheduler]
    stale_after`` is used (defaults: day 1, hour 2). Detection should skip a
    stale metric: its "drop" is a broken feed, reported as a meta-alert.
    """
    if after is None:
        after = stale_threshold(configured_stale_after(config) if config is not None else None,
                                metric.name, metric.grain)
    return staleness(store, metric, now, after=after).stale


def _read(store: Store, metric: Metric) -> tuple[dt.datetime | None, dt.datetime | None]:
    if not store.has_leaves(metric.name):
        return None, None
    table = leaves_table(metric.name)
    with store.connect(read_only=True) as con:
        until = con.execute("SELECT max(window_end) FROM runs WHERE metric = ? AND status = 'ok'"
                            " AND definition_hash = ?", [metric.name, metric.definition_hash]).fetchone()[0]
        sql = (f'SELECT max(ts) FROM (SELECT ts FROM "{table}" GROUP BY ts HAVING sum("denominator") > 0)'
               if metric.kind == "ratio" else f'SELECT max(ts) FROM "{table}"')
        if store.leaf_engine is not None:  # warehouse mode (monitor.warehouse): the leaves are on Spark
            con = store.leaf_engine.leaf_queries(metric)
        last = con.execute(sql).fetchone()[0]
    return until, last
