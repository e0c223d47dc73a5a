"""Incidents of a leading metric point where a trailing metric is tested on its own.

A metric header may say ``detect: {follows: [fraud_rate]}``: chargebacks come from fraud,
so when fraud_rate has an incident that names a segment (GB & android & card), the
chargeback rate of *that* segment is tested directly. The slice search has to widen its
threshold for ~150 slices at once and only sees the segment diluted in two-dimension
slices; here the hypothesis is fixed in advance by the other metric, so one test at the
metric's own threshold is fair, on the exact segment.

The test, per lead (segment, start):
- windows start within one bucket of the lead's start and last 1..``accept_after`` buckets
  (cut at the last bucket); the window with the largest statistic is reported;
- the window's count is compared with the segment's own count over the ``BASELINE_DAYS``
  before, conditionally on their sum (the exact two-Poisson comparison, so a baseline of a
  few events is not taken as precise). Expected masses follow the denominator and the
  total's seasonal shape (weekday, hour), because a segment alone is too sparse to learn it;
- the likelihood-ratio statistic is divided by the segment's over-dispersion (Pearson,
  over ``DISPERSION_DAYS``, at least 1) and signed: a z-like score;
- it fires when that score reaches the metric's threshold in the lead's direction (and the
  header's), and the rate moved by at least ``MIN_EFFECT``.
"""
from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from monitor.catalog import Metric
from monitor.detect.incident_rows import detected_row, lies_within, same_episode
from monitor.incident import decode_explanation
from monitor.detect.mix import MIN_EFFECT
from monitor.detect.options import DetectOptions, effective_period
from monitor.detect.results import relative_change
from monitor.engine import GRAIN_STEP
from monitor.slices import slice_label
from monitor.store import Store

BASELINE_DAYS = 28  # the segment's level: four weeks, every weekday four times
DISPERSION_DAYS = 56  # its day-to-day over-dispersion needs more points than its level
BACK_Z = 2.0  # the buckets after the best window this far below its rate: the episode is over


@dataclass(frozen=True)
class Lead:
    metric: str
    incident_id: str
    segment: dict[str, str]  # restricted to the trailing metric's dimensions
    start: dt.datetime
    direction: str


@dataclass(frozen=True)
class FollowFinding:
    lead: Lead
    start: int  # the best window [start, end) on the axis
    end: int
    observed: float  # rate (ratio) or mean value (sum) in the window
    baseline: float  # what the baseline predicts for the same buckets
    score: float
    counts: tuple[float, float]  # window count, expected count under the baseline
    dispersion: float
    still_elevated: bool  # the buckets after the window have not come back (or there are none)
    max_length: int  # the longest window tried

    @property
    def status(self) -> tuple[int | None, str | None]:
        """(end bucket or None while open, resolution): the incident stays open while the
        segment has not come back; one that lasts the longest window is the new normal, as
        a persisting level shift is for the slice search."""
        if not self.still_elevated:
            return self.end, "recovered"
        if self.end - self.start >= self.max_length:
            return self.end, "new_normal"
        return None, None


def leads_for(store: Store, metric: Metric, *, since: dt.datetime) -> list[Lead]:
    """Incidents of the metrics ``metric`` follows (not labelled false alarms), as segments
    of ``metric``: the incident's slice plus its explanation's top cause (a total incident's
    explanation names the segment), keeping only dimensions both metrics have."""
    if not metric.detect.follows:
        return []
    with store.connect(read_only=True) as con:
        rows = con.execute(
            "SELECT i.metric, i.incident_id, i.slice_json, i.start_ts, i.direction,"
            " coalesce(i.explanation_json, p.explanation_json) FROM incidents i"
            " LEFT JOIN incidents p ON p.incident_id = i.parent_id"
            " WHERE i.metric IN (SELECT unnest(?)) AND i.metric <> ? AND coalesce(i.label, '') <> 'false_alarm'"
            # withdrawn: re-detection no longer finds it (its start moved: the new one leads)
            " AND coalesce(i.resolution, '') <> 'withdrawn'"
            " AND (i.end_ts IS NULL OR i.end_ts > ?) ORDER BY i.start_ts, i.incident_id",
            [list(metric.detect.follows), metric.name, since]).fetchall()
    leads, seen = [], set()
    for name, incident, slice_json, start, direction, explanation in rows:
        segment = dict(json.loads(slice_json))
        explained = decode_explanation(explanation)
        cause = (dict(explained.causes[0].segment)
                 if explained is not None and explained.causes and explained.verdict != "mix" else {})
        # a parent's cause (the total's country=US) must not overwrite the slice's own value
        if all(segment.get(k, v) == v for k, v in cause.items()):
            segment.update(cause)
        segment = {k: str(v) for k, v in sorted(segment.items()) if k in metric.dimensions}
        if not segment:
            continue  # nothing narrower than the total, which is judged anyway
        key = (slice_label(segment), start, direction)
        if key in seen:
            continue  # a total and its slices often name the same segment
        seen.add(key)
        leads.append(Lead(name, incident, segment, start, direction))
    return leads


def segment_series(store: Store, metric: Metric, segment: dict[str, str], axis: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    """(count, volume) of one segment on the axis: numerator and denominator for a ratio
    metric, value and 1 per bucket for a sum metric."""
    frame = store.series(metric, by=tuple(segment), start=axis[0].to_pydatetime(),
                         end=axis[-1].to_pydatetime() + GRAIN_STEP[metric.grain])
    for key, value in segment.items():
        frame = frame[frame[key].astype(str) == value]
    frame = frame.groupby("ts")[list(metric.measures)].sum().reindex(axis, fill_value=0.0)
    if metric.kind == "ratio":
        return frame["numerator"].to_numpy(float), frame["denominator"].to_numpy(float)
    return frame["value"].to_numpy(float), np.ones(len(axis))


def seasonal_shape(count: np.ndarray, volume: np.ndarray, period: int | None, window: slice) -> np.ndarray:
    """Per bucket, the total's rate at that phase over ``window`` relative to its rate over
    the whole window (1 without seasonality, or where a phase has no volume)."""
    shape = np.ones(count.size)
    if not period:
        return shape
    phases = np.arange(count.size) % period
    num, den = count[window], volume[window]
    overall = num.sum() / den.sum() if den.sum() > 0 else 0.0
    if overall <= 0:
        return shape
    for p in range(period):
        here = phases[window] == p
        if den[here].sum() > 0 and num[here].sum() > 0:
            shape[phases == p] = num[here].sum() / den[here].sum() / overall
    return shape


def conditional_z(window_count: float, baseline_count: float, window_mass: float, baseline_mass: float,
                  dispersion: float) -> float:
    """Signed likelihood-ratio score for "the window's rate equals the baseline's", given the
    two counts and their expected masses under that hypothesis (binomial split of the sum).

    >>> round(conditional_z(19, 30, 4.0, 28.0, 1.0), 1)  # 19 events where 30 in 28 days expect ~4
    4.6
    >>> conditional_z(3, 21, 3.0, 21.0, 1.0)
    0.0
    """
    total = window_count + baseline_count
    if total <= 0 or window_mass <= 0 or baseline_mass <= 0:
        return 0.0
    q = window_mass / (window_mass + baseline_mass)
    expected = total * q

    def term(k: float, e: float) -> float:
        return k * math.log(k / e) if k > 0 else 0.0

    g = 2.0 * (term(window_count, expected) + term(baseline_count, total - expected)) / max(dispersion, 1.0)
    z = math.sqrt(max(g, 0.0))
    return z if window_count > expected else -z if window_count < expected else 0.0


def follow_lead(lead: Lead, count: np.ndarray, volume: np.ndarray, axis: pd.DatetimeIndex, *,
                total: tuple[np.ndarray, np.ndarray], period: int | None, grain: str, threshold: float, allowed: str,
                max_length: int, excluded: np.ndarray | None = None) -> FollowFinding | None:
    """The best window for one lead, or None when it does not reach ``threshold``.
    ``total``: the metric total's (count, volume), for the seasonal shape over the same
    baseline weeks."""
    sign = 1 if lead.direction == "up" else -1
    if allowed not in ("both", lead.direction):
        return None
    n = len(axis)
    anchor = int(axis.searchsorted(pd.Timestamp(lead.start)))
    if anchor >= n:
        return None
    per_day = _buckets_per_day(grain)
    first = max(anchor - 1, 0)
    usable = np.ones(n, bool) if excluded is None else ~excluded
    weeks = slice(max(first - BASELINE_DAYS * per_day, 0), first)
    base = np.arange(weeks.start, weeks.stop)
    base = base[usable[base]]
    if base.size < BASELINE_DAYS * per_day // 2:
        return None  # too little history to know the segment's normal
    mass = volume * seasonal_shape(*total, period, weeks)
    k_base, m_base = float(count[base].sum()), float(mass[base].sum())
    if m_base <= 0:
        return None  # no volume before: nothing to compare with (none *events* is a baseline)
    rate = k_base / m_base
    disp_idx = np.arange(max(first - DISPERSION_DAYS * per_day, 0), first)
    disp_idx = disp_idx[usable[disp_idx] & (mass[disp_idx] > 0)]
    dispersion = 1.0
    if disp_idx.size > 2 and count[disp_idx].sum() > 0:
        # around the window's own pooled rate: a level that differs between its halves (a
        # few events more one month) must not read as day-to-day over-dispersion
        mu = count[disp_idx].sum() / mass[disp_idx].sum() * mass[disp_idx]
        dispersion = max(1.0, float(np.sum((count[disp_idx] - mu) ** 2 / mu) / (disp_idx.size - 1)))
    best = None
    for s in range(first, min(anchor + 2, n)):
        k = np.cumsum(count[s: min(s + max_length, n)])
        m = np.cumsum(mass[s: min(s + max_length, n)])
        for length in range(1, k.size + 1):
            z = conditional_z(float(k[length - 1]), k_base, float(m[length - 1]), m_base, dispersion)
            if best is None or sign * z > sign * best[0]:
                best = (z, s, s + length)
    if best is None or sign * best[0] < threshold:
        return None
    z, s, e = best
    window = slice(s, e)
    den = float(volume[window].sum())
    if den <= 0:
        return None
    observed = float(count[window].sum()) / den
    expected = rate * float(mass[window].sum()) / den
    if abs(relative_change(observed, expected) or 0.0) < MIN_EFFECT:
        return None
    # over only once the buckets after the window are clearly back below the window's rate:
    # a best window may end early on one noisy low bucket while the attack goes on (the
    # incident would flip to resolved and open again, and page twice)
    after = slice(e, n)
    still = e >= n or sign * conditional_z(float(count[after].sum()), float(count[window].sum()),
                                           float(mass[after].sum()), float(mass[window].sum()),
                                           dispersion) > -BACK_Z
    return FollowFinding(lead, s, e, observed, expected, float(z),
                         (float(count[window].sum()), rate * float(mass[window].sum())), dispersion,
                         still_elevated=still, max_length=max_length)


def follow_rows(store: Store, metric: Metric, axis: pd.DatetimeIndex, total: tuple[np.ndarray, np.ndarray], *,
                options: DetectOptions, threshold: float, masks: dict[str, np.ndarray]) -> list[dict]:
    """Incident rows (as ``run_detection._incident_rows`` builds them) for every lead of
    the metric that its segment confirms."""
    if len(axis) == 0:
        return []
    leads = leads_for(store, metric, since=axis[0].to_pydatetime())
    if not leads:
        return []
    period = effective_period(options.period, BASELINE_DAYS * _buckets_per_day(metric.grain))
    rows = []
    cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for lead in leads:
        label = slice_label(lead.segment)
        if label not in cache:
            cache[label] = segment_series(store, metric, lead.segment, axis)
        count, volume = cache[label]
        found = follow_lead(lead, count, volume, axis, total=total, period=period, grain=metric.grain,
                            threshold=threshold, allowed=metric.detect.direction, max_length=options.accept_after,
                            excluded=masks.get(label))
        if found is None:
            continue
        start = axis[found.start].to_pydatetime()
        end_index, resolution = found.status
        end = axis[end_index].to_pydatetime() if end_index is not None and end_index < len(axis) else None
        why = {
            "detector": "follows",
            "series": label,
            "segment_kind": "level_shift" if found.end - found.start > 1 else "spike",
            "follows": {"metric": lead.metric, "incident_id": lead.incident_id,
                        "start": lead.start.isoformat(), "segment": lead.segment},
            "test": "window count vs the segment's own baseline count, conditional on their sum "
                    "(likelihood ratio / over-dispersion, signed)",
            "threshold": threshold,
            "window_buckets": found.end - found.start,
            "observed_count": found.counts[0],
            "expected_count": round(found.counts[1], 3),
            "dispersion": round(found.dispersion, 3),
            "baseline": f"the segment's pooled rate over the {BASELINE_DAYS} days before the lead, "
                        f"shaped by the total's seasonal profile (period {period})",
            "min_effect": MIN_EFFECT,
        }
        rows.append(detected_row(
            metric, lead.segment, start=start, end=end,
            last_ts=(axis[-1] if end is None else axis[end_index - 1]).to_pydatetime(),
            direction=lead.direction, kind=why["segment_kind"], baseline=found.baseline, observed=found.observed,
            relative_change=relative_change(found.observed, found.baseline), score=found.score,
            resolution=resolution, why=why))
    return _drop_duplicates(rows)


def _buckets_per_day(grain: str) -> int:
    return max(int(dt.timedelta(days=1) / GRAIN_STEP[grain]), 1)


def _drop_duplicates(rows: list[dict]) -> list[dict]:
    """One incident per episode: leads naming the same segment with starts a bucket apart (a
    total and its slice) find overlapping windows, and a lead with a vaguer explanation names
    a segment around another's (android & card around GB & android & card). The most specific
    segment stays, then the strongest."""
    kept: list[dict] = []
    for row in sorted(rows, key=lambda r: (-len(json.loads(r["slice_json"])), -abs(r["score"]))):
        segment = json.loads(row["slice_json"])
        if not any(same_episode(k, row) and lies_within(json.loads(k["slice_json"]), segment) for k in kept):
            kept.append(row)
    return sorted(kept, key=lambda r: r["start_ts"])
