"""Detection over a metric's stored leaves: the total, every slice, incidents in the store.

Series-level maths lives in `series.py`; this module decides which series to
judge, how strict to be with many slices, and turns anomalous segments into
incidents (one per episode, slices linked under the total).

A scheduled cycle (``monitor run``, the scheduler) re-judges the whole window (HISTORY) of
every series, as ``monitor detect`` does: what detection says about the newest bucket
depends on the whole window, not on a state a cycle could carry to the next one:
- the change-point search (``shifts.find_batch``) places regimes by one penalised fit over
  the window (penalty 2 log n), on a seasonal profile estimated over the window, and a
  regime is judged by the mean of its first buckets: a bucket seen later can add or move
  a break before the newest bucket and flag it;
- the second pass keeps the closed incidents found anywhere in the window out of the
  baseline, and an accepted shift ends its incident where acceptance began;
- the slices' strictness counts the slices of the window, the leaf screen's threshold the
  pairs it tests and its candidates are its 200 smallest p-values over the window.
Only the online part (level, season, noise, CUSUM sums and the CUSUM's estimated start)
could be carried. Measured on the demo (benchmarks/cycle_replay.py, seed 3, 31 daily
cycles of 9 metrics): 40 of 279 newest-bucket verdicts differ from what one full detect
as of the last day says about those buckets (61 hourly cycles of the hourly decline rate
around its card-testing burst: 38 of 61), mostly incidents found later with a
start dated back to where the shift began, and two-dimension slices entering or leaving
the kept set; so a cycle that keeps its stored verdicts for older buckets does not give a
full detect's incidents.
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
from monitor.detect.incident_rows import detected_row, lies_within, same_episode
from monitor.detect.mix import merge_runs, mix_runs, mix_series
from monitor.detect.options import DetectOptions, sensitivity_multiplier
from monitor.detect.slices import (DEFAULT_BUDGET, MAX_PAIR_SLICES, PAIR_MIN_SHARE, SliceSeries,  # noqa: F401
                                   build_slices)
from monitor.engine import GRAIN_STEP
from monitor.store import Store
from monitor.store.staging import Staging

# How much history one detection looks at: enough for a seasonal baseline, bounded for speed.
HISTORY = {"day": dt.timedelta(days=400), "hour": dt.timedelta(days=150)}
DUCKDB_MIN_MEMORY = 256 * 2**20
EXPECTATION_ROW_BYTES = 200  # one expectations row in Arrow and in DuckDB's insert, roughly
JUDGE_CELL_BYTES = 400  # detector bytes per series x bucket cell (inputs, bands, scores, temporaries)
MIX_CELL_BYTES = 200  # mix test bytes per value x bucket cell


@dataclass
class DetectionResult:
    metric: str
    series_checked: int = 0
    incidents: list[dict] = field(default_factory=list)  # rows written (new or updated)

    @property
    def open_incidents(self) -> list[dict]:
        return [i for i in self.incidents if i["status"] == "open"]


def load_slices(store: Store, metric: Metric, *, end: dt.datetime,
                memory_limit: int = DEFAULT_BUDGET) -> tuple[pd.DatetimeIndex, list[SliceSeries]]:
    """Total, one-dimension and (above a volume floor) two-dimension series on a dense time
    axis, aggregated by the database (see ``monitor.detect.slices``). Half of `memory_limit`
    bytes is DuckDB's (it spills past it; at least DUCKDB_MIN_MEMORY, below which its
    in-memory temp tables fail), half numpy's for the chunks of screened pairs."""
    if store.leaf_engine is not None:  # warehouse mode (monitor.warehouse): the leaves are on Spark
        return store.leaf_engine.build_slices(metric, start=end - HISTORY[metric.grain], end=end, step=GRAIN_STEP[metric.grain],
                                  budget_bytes=int(memory_limit) // 2)
    with store.connect(read_only=True) as con:
        con.execute(f"SET memory_limit = '{max(int(memory_limit) // 2, DUCKDB_MIN_MEMORY) // 2**20}MiB'")
        return build_slices(con, metric, start=end - HISTORY[metric.grain], end=end, step=GRAIN_STEP[metric.grain],
                            budget_bytes=int(memory_limit) // 2)


def slice_sensitivity(base, n_slices: int):
    """Stricter thresholds when many slices are tested at once, so the slices of one
    metric together raise about as many false alarms as its total (a Bonferroni-like
    widening that grows slowly with the number of slices)."""
    widen = math.sqrt(1.0 + math.log(max(n_slices, 1)) / 2.0)
    return sensitivity_multiplier(base) * widen


def detect_metric(store: Store, metric: Metric, *, now: dt.datetime,
                  memory_limit: int = DEFAULT_BUDGET) -> DetectionResult:
    """Judge every series of the metric and write incidents, expectations and change points
    (`memory_limit`: bytes, the project's [detect] memory_limit)."""
    result = DetectionResult(metric.name)
    if not metric.detect.enabled or not store.has_leaves(metric.name):
        return result
    if metric.kind in ("mean", "distribution"):
        return _detect_kind(store, metric, now=now, memory_limit=memory_limit, result=result)
    axis, series = load_slices(store, metric, end=now, memory_limit=memory_limit)
    if not series:
        return result
    options = DetectOptions.from_metric(metric)
    runs = _mix_runs(metric, series, options, memory_limit) if metric.kind == "ratio" else []
    base: dict[str, np.ndarray] = {}
    for run in runs:
        if not run.accepted:
            # hygiene: the total's baseline does not learn a traffic mix that may pass (the
            # incident then shows the whole move); an accepted mix is the new normal
            mask = base.setdefault("", np.zeros(len(axis), bool))
            mask[run.start:len(axis) if run.end is None else run.end] = True
    # Two passes, so the result depends on the data and human labels only, never on what an
    # earlier run stored (re-running detect changes nothing): the second keeps the closed
    # incidents the first found out of the baseline, for the series that had any.
    false_alarms = _false_alarms(store, metric)
    # each chunk's bands go to a scratch file as they are judged (Python keeps segments only),
    # and `_write` swaps them in within its one transaction
    batch = _batch_detector(store)
    with Staging(store.path) as staging:
        first = _judge(metric, axis, series, options, base, runs, range(len(series)), memory_limit,
                       batch=batch, staging=staging)
        detections = [first[i] for i in range(len(series))]
        rows = _rows(store, metric, axis, series, detections, options, base, now)
        exclusions = _exclusion_masks(rows, false_alarms, axis, base)
        again = [i for i, s in enumerate(series) if s.label in exclusions
                 and not np.array_equal(exclusions[s.label], base.get(s.label, np.zeros(len(axis), bool)))]
        if again:
            redone = _judge(metric, axis, series, options, exclusions, runs, again, memory_limit,
                            batch=batch, staging=staging, replacing=True)
            detections = [_second_pass(d, redone[i], exclusions[series[i].label], screened=series[i].screened)
                          if i in redone else d for i, d in enumerate(detections)]
            rows = _rows(store, metric, axis, series, detections, options, exclusions, now)
        result.series_checked = len(series)
        _link_parents(rows, GRAIN_STEP[metric.grain])
        _write(store, metric, axis, series, detections, rows, now, memory_limit, staging=staging)
    result.incidents = rows
    return result


def _detect_kind(store: Store, metric: Metric, *, now: dt.datetime, memory_limit: int,
                 result: DetectionResult) -> DetectionResult:
    """A mean or distribution metric: judged by its kind's own test (``monitor.detect.run_kinds``),
    written like the others."""
    from monitor.detect.run_kinds import kind_detections, tag_rows

    with store.connect(read_only=True) as con:
        con.execute(f"SET memory_limit = '{max(int(memory_limit) // 2, DUCKDB_MIN_MEMORY) // 2**20}MiB'")
        axis, series, detections = kind_detections(con, metric, start=now - HISTORY[metric.grain], end=now,
                                                   memory_limit=memory_limit, widen=slice_sensitivity,
                                                   leaf_engine=store.leaf_engine)
    if not series:
        return result
    rows = tag_rows(metric, _incident_rows(metric, axis, series, detections, now))
    result.series_checked = len(series)
    _link_parents(rows, GRAIN_STEP[metric.grain])
    _write(store, metric, axis, series, detections, rows, now, memory_limit)
    result.incidents = rows
    return result


def _batch_detector(store: Store):
    """None (detect_batch here), or in warehouse mode detect_batch run on the Spark executors."""
    return store.leaf_engine.batch_detector() if store.leaf_engine is not None else None


def _second_pass(first, second, excluded: np.ndarray, *, screened: bool):
    """The second pass's detection, with the first pass's closed episodes that caused its
    exclusions. Excluding a closed incident is for what comes after it (the baseline must not
    learn the attack), but its own buckets then feed no sustained-shift statistic, so judged
    again it would shrink to its strongest spike (the demo's card-testing shift, 3 days, read
    as 1). So those episodes stay as first found, and the second pass speaks for the rest.
    A screened pair also keeps first-pass segments it lost altogether: the screen, calibrated
    to every pair, has already vouched for the move."""
    own = [seg for seg in first.segments if seg.end is not None and not seg.accepted and excluded[seg.start]]
    if screened:
        own += [seg for seg in first.segments if seg not in own and not _overlaps(seg, second.segments)]
    if not own:
        return second
    rest = [seg for seg in second.segments if not _overlaps(seg, own)]
    return replace(second, segments=sorted([*own, *rest], key=lambda seg: seg.start))


def _overlaps(seg, others) -> bool:
    """Some segment of ``others`` covers part of ``seg``'s span in the same direction."""
    return any(o.direction == seg.direction and o.start < _end(seg) and seg.start < _end(o) for o in others)


def _end(seg) -> float:
    return math.inf if seg.end is None else seg.end


def _mix_runs(metric: Metric, series: list[SliceSeries], options: DetectOptions,
              memory_limit: int = DEFAULT_BUDGET) -> list:
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
    opts = replace(options, sensitivity=slice_sensitivity(options.sensitivity, len(by_dim)),
                   detector="default").resolve(n=series[0].values.size, n_series=1)
    # the rows go in as they are, stacked a chunk at a time (a dimension of 200,000 sellers)
    chunk = max(1, int(memory_limit // 4 // (MIX_CELL_BYTES * max(series[0].values.size, 1))))
    mixes = [mix_series(dim, [s.segment[dim] for s in parts], *_part_rows(parts),
                        period=opts.period, min_volume=opts.min_volume, chunk_rows=chunk)
             for dim, parts in by_dim.items()]
    return mix_runs(mixes, threshold=opts.spike_threshold, direction=opts.direction, accept_after=opts.accept_after)


def _part_rows(parts: list[SliceSeries]) -> tuple:
    """(values rows, volume rows) of the parts; in warehouse mode read from Spark a chunk at a
    time as mix_series reaches them (monitor.warehouse.remote)."""
    lazy = next((s.rows for s in parts if hasattr(s, "rows")), None)
    return lazy(parts) if lazy else ([s.values for s in parts], [s.volume for s in parts])


def _judge(metric: Metric, axis, series: list[SliceSeries], options: DetectOptions, exclusions: dict[str, np.ndarray],
           runs: list, which, memory_limit: int = DEFAULT_BUDGET, *, batch=None, staging: Staging | None = None,
           replacing: bool = False) -> dict[int, object]:
    """Detections of the series at the indices `which` (the total at 0), each judged as in
    the full batch: slices with the strictness of all slices, whichever are re-judged.

    With `staging`, each chunk's expectation rows are staged there as soon as it is judged
    (`replacing`: over the rows an earlier pass staged for those series) and the slices'
    detections come back without their per-bucket arrays: segments, change points and
    params are all the rest of detection reads. The total keeps its arrays (the mix runs
    merge into them)."""
    from monitor.detect.series import detect_batch

    which = sorted(which)
    out: dict[int, object] = {}
    # screened pairs passed a test calibrated to every pair screened (monitor.detect.screen):
    # among themselves they are few, so they are as strict as that few slices
    n_screened = sum(s.screened for s in series)
    groups = ([i for i in which if i == 0], [i for i in which if i > 0 and not series[i].screened],
              [i for i in which if series[i].screened])
    for kind, group in enumerate(groups):
        if not group:
            continue
        opts = options
        if kind > 0:
            floor = metric.detect.slice_min_volume
            tested = len(series) - 1 - n_screened if kind == 1 else n_screened
            opts = replace(options, sensitivity=slice_sensitivity(options.sensitivity, tested),
                           min_volume=options.min_volume if floor is None else float(floor))
        judge_series = getattr(batch, "judge_series", None)
        if judge_series is not None:  # warehouse mode: series judged where their rows are (monitor.warehouse)
            out.update(judge_series(metric, series, group, exclusions, opts))
            if staging is not None:
                _stage(staging, axis, series, out, group, replacing)
            continue
        # rows are judged independently: in chunks, so 200,000 slices need one chunk's memory
        per_chunk = max(1, int(memory_limit // 4 // (JUDGE_CELL_BYTES * max(len(axis), 1))))
        for first in range(0, len(group), per_chunk):
            part = group[first:first + per_chunk]
            values = np.vstack([series[i].values for i in part])
            volumes = np.vstack([series[i].volume for i in part]) if metric.kind == "ratio" else None
            excludes = np.vstack([exclusions.get(series[i].label, np.zeros(len(axis), bool)) for i in part])
            out.update(zip(part, (batch or detect_batch)(values, denominators_2d=volumes, exclude=excludes, options=opts)))
            del values, volumes, excludes
            if staging is not None:
                _stage(staging, axis, series, out, part, replacing)
    if runs and 0 in out:
        total = out[0]
        out[0] = replace(total, segments=merge_runs(
            total.segments, runs, observed=total.observed, expected=total.expected, volume=series[0].volume))
    return out


_NO_BAND = np.empty(0)


def _stage(staging: Staging, axis, series, out: dict, part: list[int], replacing: bool) -> None:
    """The chunk's bands (total and one-dimension slices, as `_write` stores) into `staging`;
    the chunk's slices then drop their arrays."""
    # (in warehouse mode only the shown series' bands came back from the executors)
    kept = [i for i in part if len(series[i].segment) <= 1 and out[i].expected is not None]
    if kept:
        staging.put(_expectation_rows(axis, series, out, kept),
                    replacing=[series[i].label for i in kept] if replacing else None)
    for i in part:
        if i:
            out[i] = replace(out[i], expected=_NO_BAND, lower=_NO_BAND, upper=_NO_BAND, observed=_NO_BAND,
                             score=_NO_BAND, anomalous=_NO_BAND)


def _rows(store: Store, metric: Metric, axis, series, detections, options: DetectOptions, exclusions, now) -> list[dict]:
    """Incident rows of the detections, plus those the metrics it follows point to."""
    rows = _incident_rows(metric, axis, series, detections, now)
    # the total's seasonal shape: rate per phase (ratio), or value per phase (sum: volume 1)
    total = (series[0].values, series[0].volume if metric.kind == "ratio" else np.ones(len(axis)))
    rows += _unfound(follow_rows(store, metric, axis, total, options=options,
                                 threshold=options.threshold, masks=exclusions),
                     rows)
    return rows


def _false_alarms(store: Store, metric: Metric) -> set[str]:
    """Incidents a human labelled false alarms: what they covered was normal after all."""
    with store.connect(read_only=True) as con:
        return {r[0] for r in con.execute("SELECT incident_id FROM incidents WHERE metric = ? AND label = 'false_alarm'",
                                          [metric.name]).fetchall()}


def _exclusion_masks(rows: list[dict], false_alarms: set[str], axis: pd.DatetimeIndex,
                     base: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Closed incidents stay out of the baseline, so an attack does not become the new
    normal by itself. Not excluded: false alarms (a human said they were normal), shifts
    accepted as the new normal, and open incidents, which the detector itself keeps out of
    the baseline while it decides whether a persisting shift is to be accepted."""
    masks = {label: mask.copy() for label, mask in base.items()}
    values = axis.values
    for row in rows:
        if row["end_ts"] is None or row["resolution"] != "recovered" or row["incident_id"] in false_alarms:
            continue
        mask = masks.setdefault(row["slice"], np.zeros(len(axis), bool))
        mask |= (values >= np.datetime64(row["start_ts"])) & (values < np.datetime64(row["end_ts"]))
    return masks


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
            rows.append(detected_row(
                metric, s.segment, start=start, end=end,
                last_ts=axis[max(seg.start, min(last_index, len(axis) - 1))].to_pydatetime(),
                direction=seg.direction, kind=seg.kind, baseline=seg.baseline, observed=seg.observed,
                relative_change=seg.relative_change, score=seg.score,
                resolution="new_normal" if seg.accepted else "recovered", why=why))
    return rows


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


def _write(store: Store, metric: Metric, axis, series, detections, rows, now, memory_limit: int = DEFAULT_BUDGET,
           *, staging: Staging | None = None) -> None:
    """Incidents, expectations and change points of the metric, in one transaction.

    Human fields (ack, label) and explanations of incidents that did not change
    are kept; open incidents that re-detection no longer finds are resolved.
    Expectations come from `staging` when detection staged them (read from its file by
    DuckDB), else from the detections' arrays.
    """
    # the bands go in by chunks of series, so their Arrow tables stay within the budget
    # (in warehouse mode only the shown series' bands came back from the executors)
    keep = [i for i, s in enumerate(series) if len(s.segment) <= 1 and detections[i].expected is not None]
    per_chunk = max(1, int(memory_limit // 4 // (EXPECTATION_ROW_BYTES * max(len(axis), 1))))
    ts = axis.to_pydatetime()
    cps = [(metric.name, s.label, ts[i]) for s, det in zip(series, detections) if len(s.segment) <= 1
           for i in det.change_points if 0 <= i < len(ts)]
    with store.connect() as con:
        con.execute(f"SET memory_limit = '{max(int(memory_limit) // 2, DUCKDB_MIN_MEMORY) // 2**20}MiB'")
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
            if staging is not None:
                staged = staging.source(con)
                if staged is not None:  # read from the scratch file by DuckDB
                    con.execute("INSERT INTO expectations SELECT ?, slice, ts, observed, volume, expected, lower,"
                                f" upper, score, anomalous FROM {staged}", [metric.name])
                    con.unregister("staged_superseded")
                keep = []
            for first in range(0, len(keep), per_chunk):
                expectations = _expectation_rows(axis, series, detections, keep[first:first + per_chunk])
                if expectations is None:
                    continue
                con.register("new_expectations", expectations)
                con.execute("INSERT INTO expectations SELECT ?, slice, ts, observed, volume, expected, lower, upper,"
                            " score, anomalous FROM new_expectations", [metric.name])
                con.unregister("new_expectations")
                del expectations
            con.execute("DELETE FROM change_points WHERE metric = ?", [metric.name])
            if cps:
                con.register("new_change_points", pa.table({"slice": [c[1] for c in cps], "ts": [c[2] for c in cps]}))
                con.execute("INSERT INTO change_points SELECT ?, slice, ts FROM new_change_points", [metric.name])
                con.unregister("new_change_points")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise


def _expectation_rows(axis: pd.DatetimeIndex, series: list[SliceSeries], detections,
                      keep: list[int] | None = None) -> pa.Table | None:
    """The band of the series at `keep` (default: the total and one-dimension slices; never
    pairs), one Arrow table for one bulk insert: series x buckets arrays flattened, the
    slice label a dictionary column. NaN (not judged, below the volume floor) becomes NULL,
    as the store keeps it."""
    if keep is None:
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
