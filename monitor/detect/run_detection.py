"""Detection over a metric's stored leaves: the total, every slice, incidents in the store.

Series-level maths lives in `series.py`; this module decides which series to
judge, how strict to be with many slices, and turns anomalous segments into
incidents (one per episode, slices linked under the total).
"""
from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import pyarrow as pa

from monitor.catalog import Metric
from monitor.detect.follows import follow_rows
from monitor.detect.incident_rows import incident_row, lies_within, same_episode
from monitor.detect.mix import merge_runs, mix_runs, mix_series
from monitor.detect.options import BASE_THRESHOLD, SENSITIVITY, make_options
from monitor.detect.slices import MAX_PAIR_SLICES, PAIR_MIN_SHARE, SliceSeries, build_slices  # noqa: F401
from monitor.engine import GRAIN_STEP
from monitor.store import Store

# How much history one detection looks at: enough for a seasonal baseline, bounded for speed.
HISTORY = {"day": dt.timedelta(days=400), "hour": dt.timedelta(days=150)}
# A persisting level shift becomes the new normal after this many buckets (header overrides).
ACCEPT_AFTER = {"day": 14, "hour": 72}


@dataclass
class DetectionResult:
    metric: str
    series_checked: int = 0
    incidents: list[dict] = field(default_factory=list)  # rows written (new or updated)

    @property
    def open_incidents(self) -> list[dict]:
        return [i for i in self.incidents if i["status"] == "open"]


def detection_options(metric: Metric) -> dict:
    """detect_series keyword options from the metric header."""
    settings = metric.detect
    seasonality = settings.seasonality
    if seasonality == "auto":
        period = 7 if metric.grain == "day" else (24, 168)
    elif seasonality == "weekly":
        period = 7 if metric.grain == "day" else 168
    elif seasonality == "daily":
        period = None if metric.grain == "day" else 24
    else:
        period = None
    return {
        "period": period,
        "direction": settings.direction,
        "sensitivity": settings.sensitivity,
        "min_volume": float(settings.min_volume),
        "accept_after": settings.accept_after or ACCEPT_AFTER[metric.grain],
    }


def load_slices(store: Store, metric: Metric, *, end: dt.datetime) -> tuple[pd.DatetimeIndex, list[SliceSeries]]:
    """Total, one-dimension and (above a volume floor) two-dimension series on a dense time
    axis, aggregated by the database (see ``monitor.detect.slices``)."""
    with store.connect(read_only=True) as con:
        return build_slices(con, metric, start=end - HISTORY[metric.grain], end=end, step=GRAIN_STEP[metric.grain])


def slice_sensitivity(base, n_slices: int):
    """Stricter thresholds when many slices are tested at once, so the slices of one
    metric together raise about as many false alarms as its total (a Bonferroni-like
    widening that grows slowly with the number of slices)."""
    widen = math.sqrt(1.0 + math.log(max(n_slices, 1)) / 2.0)
    return _multiplier(base) * widen


def detect_metric(store: Store, metric: Metric, *, now: dt.datetime) -> DetectionResult:
    """Judge every series of the metric and write incidents, expectations and change points."""
    from monitor.detect.series import detect_batch

    result = DetectionResult(metric.name)
    if not metric.detect.enabled or not store.has_leaves(metric.name):
        return result
    axis, series = load_slices(store, metric, end=now)
    if not series:
        return result
    options = detection_options(metric)
    exclusions = _exclusion_masks(store, metric, axis)
    runs = _mix_runs(metric, series, options) if metric.kind == "ratio" else []
    for run in runs:
        if not run.accepted:
            # hygiene: the total's baseline does not learn a traffic mix that may pass (the
            # incident then shows the whole move); an accepted mix is the new normal
            mask = exclusions.setdefault("", np.zeros(len(axis), bool))
            mask[run.start:len(axis) if run.end is None else run.end] = True
    groups = [series[:1], series[1:]]
    detections = []
    for group_index, group in enumerate(groups):
        if not group:
            continue
        opts = dict(options)
        if group_index == 1:
            opts["sensitivity"] = slice_sensitivity(options["sensitivity"], len(group))
            if metric.detect.slice_min_volume is not None:
                opts["min_volume"] = float(metric.detect.slice_min_volume)
        values = np.vstack([s.values for s in group])
        volumes = np.vstack([s.volume for s in group]) if metric.kind == "ratio" else None
        excludes = np.vstack([exclusions.get(s.label, np.zeros(len(axis), bool)) for s in group])
        detections += detect_batch(values, denominators_2d=volumes, exclude=excludes, **opts)
    if runs:
        total = detections[0]
        detections[0] = replace(total, segments=merge_runs(
            total.segments, runs, observed=total.observed, expected=total.expected, volume=series[0].volume))
    result.series_checked = len(series)
    rows = _incident_rows(metric, axis, series, detections, now)
    # the total's seasonal shape: rate per phase (ratio), or value per phase (sum: volume 1)
    total = (series[0].values, series[0].volume if metric.kind == "ratio" else np.ones(len(axis)))
    rows += _unfound(follow_rows(store, metric, axis, total, options=options,
                                 threshold=BASE_THRESHOLD * _multiplier(options["sensitivity"]), masks=exclusions),
                     rows)
    _link_parents(rows, GRAIN_STEP[metric.grain])
    _write(store, metric, axis, series, detections, rows, now)
    result.incidents = rows
    return result


def _mix_runs(metric: Metric, series: list[SliceSeries], options: dict) -> list:
    """Traffic-mix episodes of a ratio total, from its one-dimension slices (see
    ``monitor.detect.mix``)."""
    by_dim: dict[str, list[SliceSeries]] = {}
    for s in series[1:]:
        if len(s.segment) == 1:
            by_dim.setdefault(next(iter(s.segment)), []).append(s)
    by_dim = {dim: parts for dim, parts in by_dim.items() if len(parts) > 1}
    if not by_dim:
        return []
    # as strict as a slice test, with one mix test per dimension
    opts = make_options(n=series[0].values.size, n_series=1, period=options["period"],
                        direction=options["direction"],
                        sensitivity=slice_sensitivity(options["sensitivity"], len(by_dim)),
                        min_volume=options["min_volume"], exclude=None, accept_after=options["accept_after"],
                        detector="default")
    mixes = [mix_series(dim, [s.segment[dim] for s in parts], np.vstack([s.values for s in parts]),
                        np.vstack([s.volume for s in parts]), period=opts.period, min_volume=opts.min_volume)
             for dim, parts in by_dim.items()]
    return mix_runs(mixes, threshold=opts.spike_threshold, direction=opts.direction, accept_after=opts.accept_after)


def _exclusion_masks(store: Store, metric: Metric, axis: pd.DatetimeIndex) -> dict[str, np.ndarray]:
    """Earlier (closed) incidents stay out of the baseline, so an attack does not become
    the new normal by itself. Not excluded: false alarms (a human said they were normal),
    shifts accepted as the new normal, and open incidents, which the detector itself keeps
    out of the baseline while it decides whether a persisting shift is to be accepted."""
    with store.connect(read_only=True) as con:
        rows = con.execute(
            "SELECT slice, start_ts, end_ts FROM incidents WHERE metric = ? AND end_ts IS NOT NULL"
            " AND coalesce(label, '') <> 'false_alarm' AND coalesce(resolution, '') = 'recovered'",
            [metric.name]).fetchall() if _has_incidents(con) else []
    masks: dict[str, np.ndarray] = {}
    values = axis.values
    for label, start, end in rows:
        mask = masks.setdefault(label, np.zeros(len(axis), bool))
        mask |= (values >= np.datetime64(start)) & (values < np.datetime64(end))
    return masks


def _has_incidents(con) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'incidents'").fetchone()[0])


def _incident_rows(metric: Metric, axis, series, detections, now) -> list[dict]:
    step = GRAIN_STEP[metric.grain]
    rows = []
    for s, det in zip(series, detections):
        for seg in det.segments:
            start = axis[seg.start].to_pydatetime()
            if seg.accepted:
                end = axis[seg.accepted_at].to_pydatetime() if seg.accepted_at is not None and seg.accepted_at < len(axis) else None
                last_index = (seg.accepted_at or len(axis)) - 1
            else:
                end = axis[seg.end].to_pydatetime() if seg.end is not None and seg.end < len(axis) else (
                    axis[-1].to_pydatetime() + step if seg.end is not None else None)
                last_index = (seg.end if seg.end is not None else len(axis)) - 1
            why = dict(det.params)
            why.update({"series": s.label or "total", "segment_kind": seg.kind,
                        "slices_tested": len(series) - 1 if s.segment else None})
            why.update(seg.why or {})
            rows.append(incident_row(
                metric, s.segment, start=start, end=end,
                last_ts=axis[max(seg.start, min(last_index, len(axis) - 1))].to_pydatetime(),
                direction=seg.direction, kind=seg.kind, baseline=seg.baseline, observed=seg.observed,
                relative_change=seg.relative_change, score=seg.score,
                resolution="new_normal" if seg.accepted else "recovered", why=why))
    return rows


def _multiplier(sensitivity) -> float:
    return SENSITIVITY[sensitivity] if isinstance(sensitivity, str) else float(sensitivity)


def _unfound(followed: list[dict], rows: list[dict]) -> list[dict]:
    """Lead-driven incidents the slice search has not already raised: one whose segment
    is, or lies inside, a slice incident of the same direction that overlaps it in time is
    that incident seen again. (Under an overlapping total incident it stays, linked as a
    child: it names the segment more precisely than the total does.)"""
    def covered(row: dict) -> bool:
        segment = json.loads(row["slice_json"])
        return any(own["slice"] and same_episode(own, row) and lies_within(segment, json.loads(own["slice_json"]))
                   for own in rows)

    own_ids = {row["incident_id"] for row in rows}
    # same label and start as one of the slice search's (opposite direction): one row per id
    return [row for row in followed if not covered(row) and row["incident_id"] not in own_ids]


def _link_parents(rows: list[dict], step: dt.timedelta) -> None:
    """A slice incident that overlaps a total incident in the same direction sits under it
    (the earliest such total), so it is reported inside the total's message. Without one, a
    two-dimension slice incident sits under an overlapping incident of a one-dimension
    slice it lies in (gift_cards & web under gift_cards): one page per segment that moved."""
    by_start = sorted(rows, key=lambda r: r["start_ts"])
    totals = [r for r in by_start if r["slice"] == ""]
    singles = [r for r in by_start if r["slice"] and "&" not in r["slice"]]
    for row in rows:
        if row["slice"] == "":
            continue
        parent = next((t for t in totals if same_episode(row, t)), None)
        if parent is None and "&" in row["slice"]:
            segment = json.loads(row["slice_json"])
            parent = next((s for s in singles if same_episode(row, s)
                           and lies_within(segment, json.loads(s["slice_json"]))), None)
        if parent is not None:
            row["parent_id"] = parent["incident_id"]


def _write(store: Store, metric: Metric, axis, series, detections, rows, now) -> None:
    """Incidents, expectations and change points of the metric, in one transaction.

    Human fields (ack, label) and explanations of incidents that did not change
    are kept; open incidents that re-detection no longer finds are resolved.
    """
    expectations = _expectation_rows(axis, series, detections)
    ts = axis.to_pydatetime()
    cps = [(metric.name, s.label, ts[i]) for s, det in zip(series, detections) if len(s.segment) <= 1
           for i in det.change_points if 0 <= i < len(ts)]
    with store.connect() as con:
        con.execute("BEGIN TRANSACTION")
        try:
            existing = {r[0]: r[1:] for r in con.execute(
                "SELECT incident_id, created_at, end_ts, explanation_json, status FROM incidents WHERE metric = ?",
                [metric.name]).fetchall()}
            new_ids = {r["incident_id"] for r in rows}
            for row in rows:
                old = existing.get(row["incident_id"])
                row["created_at"] = old[0] if old else now
                keep_explanation = old is not None and old[1] == row["end_ts"] and old[3] == row["status"]
                row["explanation_json"] = old[2] if keep_explanation else None
                row["updated_at"] = now
            columns = ["incident_id", "metric", "slice", "slice_json", "parent_id", "start_ts", "end_ts", "last_ts",
                       "direction", "kind", "baseline", "observed", "relative_change", "score", "severity", "status",
                       "resolution", "why_json", "explanation_json", "created_at", "updated_at"]
            if rows:
                frame = pd.DataFrame([{c: r[c] for c in columns} for r in rows], columns=columns)
                con.register("new_incidents", frame)
                names = ", ".join(columns)
                updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in ("incident_id", "created_at"))
                con.execute(f"INSERT INTO incidents ({names}) SELECT {names} FROM new_incidents "
                            f"ON CONFLICT (incident_id) DO UPDATE SET {updates}")
                con.unregister("new_incidents")
            vanished = [i for i, old in existing.items() if i not in new_ids and old[3] == "open"]
            if vanished:
                con.execute("UPDATE incidents SET status = 'resolved', resolution = 'withdrawn', end_ts = last_ts + ?::INTERVAL,"
                            " updated_at = ? WHERE incident_id IN (SELECT unnest(?))",
                            [GRAIN_STEP[metric.grain], now, vanished])
            con.execute("DELETE FROM expectations WHERE metric = ?", [metric.name])
            if expectations is not None:
                con.register("new_expectations", expectations)
                con.execute("INSERT INTO expectations SELECT ?, slice, ts, observed, volume, expected, lower, upper,"
                            " score, anomalous FROM new_expectations", [metric.name])
                con.unregister("new_expectations")
            con.execute("DELETE FROM change_points WHERE metric = ?", [metric.name])
            if cps:
                con.register("new_change_points", pa.table({"slice": [c[1] for c in cps], "ts": [c[2] for c in cps]}))
                con.execute("INSERT INTO change_points SELECT ?, slice, ts FROM new_change_points", [metric.name])
                con.unregister("new_change_points")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise


def _expectation_rows(axis: pd.DatetimeIndex, series: list[SliceSeries], detections) -> pa.Table | None:
    """The band of the total and one-dimension slices (not pairs), one Arrow table for one
    bulk insert: series x buckets arrays flattened, the slice label a dictionary column.
    NaN (not judged, below the volume floor) becomes NULL, as the store keeps it."""
    keep = [i for i, s in enumerate(series) if len(s.segment) <= 1]
    if not keep or not len(axis):
        return None
    n = len(axis)

    def flat(rows) -> pa.Array:
        return pa.array(np.vstack(rows).astype(float, copy=False).ravel(), from_pandas=True)

    dets = [detections[i] for i in keep]
    labels = pa.DictionaryArray.from_arrays(pa.array(np.repeat(np.arange(len(keep), dtype=np.int32), n)),
                                            pa.array([series[i].label for i in keep], pa.string()))
    return pa.table({
        "slice": labels,
        "ts": pa.array(np.tile(axis.values.astype("datetime64[us]"), len(keep))),
        "observed": flat([d.observed for d in dets]),
        "volume": flat([series[i].volume for i in keep]),
        "expected": flat([d.expected for d in dets]),
        "lower": flat([d.lower for d in dets]),
        "upper": flat([d.upper for d in dets]),
        "score": flat([d.score for d in dets]),
        "anomalous": pa.array(np.vstack([d.anomalous for d in dets]).astype(bool).ravel()),
    })
