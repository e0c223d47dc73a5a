"""Detection of a mean or distribution metric: its series, judged by the kind's own test
(``monitor.detect.mean``, ``monitor.detect.distribution``), written as incidents,
expectations and links exactly as ``run_detection`` writes a ratio's.

Slices are as strict together as the total (``slice_sensitivity``). Each kind's judge
keeps anomalous buckets out of its own baseline, so there is no second pass.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json

import numpy as np
import pandas as pd

from monitor.catalog import Metric
from monitor.detect.options import DetectOptions
from monitor.engine import GRAIN_STEP


def kind_detections(con, metric: Metric, *, start: dt.datetime, end: dt.datetime, memory_limit: int,
                    widen, leaf_engine=None) -> tuple[pd.DatetimeIndex, list, list]:
    """(axis, series, detections) of a mean or distribution metric over [start, end);
    ``widen(sensitivity, n_slices)`` makes the slices stricter (run_detection's
    ``slice_sensitivity``). ``run_detection`` turns them into incidents. With a `leaf_engine`
    (warehouse mode) the same series are aggregated where the leaves are, and `con` is unused."""
    step = GRAIN_STEP[metric.grain]
    labels = None
    if leaf_engine is not None:
        axis, series, extra, labels = leaf_engine.kind_series(metric, start=start, end=end, step=step,
                                                              memory_limit=memory_limit)
    elif metric.kind == "mean":
        from monitor.detect.slices import build_slices

        def build(columns=None):
            return build_slices(con, metric, start=start, end=end, step=step, budget_bytes=int(memory_limit) // 2,
                                columns=columns)

        axis, series, extra = mean_series(build)
    else:
        from monitor.detect.distribution_slices import build_histograms

        axis, series, extra, labels = build_histograms(con, metric, start=start, end=end, step=step)
    if not series:
        return axis, [], []
    detections = judge_kind(metric, series, extra, DetectOptions.from_metric(metric), widen=widen, labels=labels)
    if metric.kind == "distribution":
        detections = [_with_buckets(d, extra[i], labels) for i, d in enumerate(detections)]
    return axis, series, detections


def tag_rows(metric: Metric, rows: list[dict]) -> list[dict]:
    """Incident rows say the metric's kind in their evidence (surfaces format by it)."""
    for row in rows:
        row["why_json"] = json.dumps({**json.loads(row["why_json"]), "metric_kind": metric.kind}, sort_keys=True)
    return rows


def judge_kind(metric: Metric, series, extra: np.ndarray, options: DetectOptions, *, widen,
               labels: list[str] | None = None) -> list:
    """The total with the metric's options; the slices stricter, as many tests at once."""
    from monitor.buckets import bucket_values
    from monitor.detect.distribution import detect_distributions
    from monitor.detect.mean import detect_means

    out: list = [None] * len(series)
    floor = metric.detect.slice_min_volume
    groups = [[0], list(range(1, len(series)))]
    for k, group in enumerate(groups):
        if not group:
            continue
        opts = options if k == 0 else dataclasses.replace(
            options, sensitivity=widen(options.sensitivity, len(group)),
            min_volume=options.min_volume if floor is None else float(floor))
        if metric.kind == "mean":
            dets = detect_means(np.vstack([series[i].values for i in group]), np.vstack([series[i].volume for i in group]),
                                extra[group], options=opts)
        else:
            dets = detect_distributions(extra[group], bucket_values(labels), options=opts)
        for i, d in zip(group, dets):
            out[i] = d
    return out


def mean_series(build):
    """The series of sums and counts, and their sums of squares over the same slices (a
    second pass of the slice builder; the slices depend on counts only, so they match).
    ``build(columns)``: a slice builder over the leaves (DuckDB's, or Spark's in warehouse mode)."""
    axis, series = build()
    _, squares = build(columns=("value_sq_sum", "value_count"))
    by_label = {s.label: s.values for s in squares}
    extra = np.vstack([by_label.get(s.label, np.full(len(axis), np.nan)) for s in series]) if series else None
    return axis, series, extra


def _with_buckets(det, counts: np.ndarray, labels: list[str]):
    """Each segment says which buckets gained and lost mass: the segment's buckets against
    the baseline buckets just before it."""
    from monitor.buckets import moved_buckets
    from monitor.detect.kind_runs import WINDOW

    segs = []
    for seg in det.segments:
        end = seg.end if seg.end is not None else counts.shape[0]
        before = counts[max(0, seg.start - WINDOW):seg.start].sum(axis=0)
        after = counts[seg.start:end].sum(axis=0)
        segs.append(dataclasses.replace(seg, why={**(seg.why or {}), "buckets": moved_buckets(before, after, labels)}))
    return dataclasses.replace(det, segments=segs)
