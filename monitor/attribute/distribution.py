"""Attribution of a distribution incident: which segments' distributions moved, and
whether the total moved because the mix of segments moved.

Each leaf's histogram is summarised by its event count and the sum of its bucket values,
so the total's mean bucket value is sum/count of additive parts, and its change splits
into mix (segments with different score levels changed share) and distribution (the
segments' own scores moved), exactly as a ratio or a mean does (``explain`` with kind
mean). The causes are the segments ``localize`` finds; each then gets the buckets that
gained and lost mass inside it. Baseline: the same weekdays of the four weeks before, as
for the other kinds.
"""
from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd

from monitor.buckets import bucket_values, moved_buckets, order_key
from monitor.catalog import Metric
from monitor.engine import GRAIN_STEP
from monitor.store import Store, leaves_table


def distribution_leaves(con, metric: Metric, *, start: dt.datetime, end: dt.datetime,
                        segment: dict[str, str], weeks: int) -> tuple[pd.DataFrame, list[str]]:
    """Per leaf (dimension values) and bucket: events after (in [start, end)) and before
    (mean over the baseline weeks), long format."""
    table, bucket = leaves_table(metric.name), metric.bucket
    dims = [d for d in metric.dimensions if d not in segment]
    week = dt.timedelta(days=7)
    before = " OR ".join("(ts >= ? AND ts < ?)" for _ in range(weeks))
    before_params = [x for k in range(1, weeks + 1) for x in (start - k * week, end - k * week)]
    where = " AND ".join(["ts >= ? AND ts < ?", *(f'"{d}" = ?' for d in segment)])
    keys = ", ".join([*(f'"{d}"' for d in dims), f'"{bucket}"'])
    frame = con.execute(
        f'SELECT {keys}, sum("count") FILTER (WHERE ts >= ? AND ts < ?) AS after,'
        f' sum("count") FILTER (WHERE {before}) AS before FROM "{table}" WHERE {where} GROUP BY ALL',
        [start, end, *before_params, start - weeks * week, end, *segment.values()]).df().fillna(0.0)
    weeks = con.execute(
        # floor(/): DuckDB's // on the DOUBLE epoch() divides without flooring (24 "weeks" in 4)
        f'SELECT count(DISTINCT floor((epoch(ts) - epoch(?::TIMESTAMP)) / {int(week.total_seconds())}))'
        f' FROM "{table}" WHERE ({before})', [start - weeks * week, *before_params]).fetchone()[0]
    frame["before"] = frame["before"] / max(int(weeks or 0), 1)
    frame[bucket] = frame[bucket].astype(str)
    return frame, dims


def explain_distribution_incident(store: Store, metric: Metric, incident, *, weeks: int, label: str,
                                  max_buckets: int, con=None):
    """The incident's first ``max_buckets`` buckets against the same weekdays of ``weeks``
    weeks before (``label`` says so), as in ``monitor.attribute.incident_attribution`` (whose
    ``Episode`` the incident is)."""
    from monitor.attribute.explain import explain

    step = GRAIN_STEP[metric.grain]
    start = incident.start_ts
    end = incident.end_ts or (incident.last_ts + step)
    end = min(end, start + step * max_buckets)
    segment = dict(incident.segment)
    if store.leaf_engine is not None:  # warehouse mode (monitor.warehouse): the same queries, run on Spark
        con = store.leaf_engine.leaf_queries(metric, start=start - weeks * dt.timedelta(days=7), end=end)
    if con is None:
        with store.connect(read_only=True) as own:
            frame, dims = distribution_leaves(own, metric, start=start, end=end, segment=segment, weeks=weeks)
    else:
        frame, dims = distribution_leaves(con, metric, start=start, end=end, segment=segment, weeks=weeks)
    labels = sorted(frame[metric.bucket].unique().tolist(), key=order_key)
    value = dict(zip(labels, bucket_values(labels)))
    x = frame[metric.bucket].map(value).astype(float)
    frame = frame.assign(after_x=frame["after"] * x, before_x=frame["before"] * x)
    by = dims or ["segment"]
    if not dims:
        frame = frame.assign(segment="(this slice)")
    leaves = frame.groupby(by, as_index=False)[["after_x", "after", "before_x", "before"]].sum()
    leaves = leaves.rename(columns={"after_x": "actual_num", "after": "actual_den",
                                    "before_x": "expected_num", "before": "expected_den"})
    explanation = explain(leaves, by, "mean", baseline_label=label, metric_label=metric.display_title)
    explanation = dataclasses.replace(explanation, kind="distribution")
    if not dims:
        explanation = dataclasses.replace(explanation, dimensions=(), causes=())
    return DistributionExplanation(explanation, _moved(frame, metric.bucket, labels, explanation))


def _moved(frame: pd.DataFrame, bucket: str, labels: list[str], explanation) -> dict:
    """Buckets that gained and lost mass in the whole and inside each cause."""
    def hist(part: pd.DataFrame, column: str) -> np.ndarray:
        return part.groupby(bucket)[column].sum().reindex(labels, fill_value=0.0).to_numpy()

    out = {"total": moved_buckets(hist(frame, "before"), hist(frame, "after"), labels)}
    for cause in explanation.causes:
        member = np.ones(len(frame), bool)
        for dim, val in cause.segment.items():
            member &= (frame[dim] == val).to_numpy()
        part = frame[member]
        out[cause.label()] = moved_buckets(hist(part, "before"), hist(part, "after"), labels)
    return out


@dataclasses.dataclass(frozen=True)
class DistributionExplanation:
    """An ``Explanation`` (kind distribution) plus the buckets that moved; stored as one
    JSON object whose ``buckets`` key readers of the plain explanation ignore."""

    explanation: object
    buckets: dict

    def to_dict(self) -> dict:
        return {**self.explanation.to_dict(), "buckets": self.buckets}

    def summary(self) -> str:
        return self.explanation.summary()

    def __getattr__(self, name):
        return getattr(self.explanation, name)
