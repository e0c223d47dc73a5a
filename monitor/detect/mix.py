"""Traffic-mix early warning for ratio metrics.

When traffic moves towards segments with a higher rate, the total rate rises by mix alone,
with no segment's rate changing. On its first day the total's own move is often inside
its noise: in the demo, one country's share of orders doubling moves the total fraud rate
by 1.2-1.6 sd a day. The share change itself is measured far more precisely (from every
order, not from the few frauds), so its consequence can be judged on day one:

    m_t = sum_s (w_st - wbar_st) * (r_st - R_t) / R_t

per dimension, over its values s: ``w_st`` the segment's share of the denominator in bucket
t, ``wbar_st`` its baseline share (median of the same phase, hour-of-week or day-of-week, in
the previous ``BASELINE_CYCLES`` cycles), ``r_st`` its pooled rate over the reference window
before t, ``R_t = sum_s wbar_st r_st``. ``m_t`` is the relative change of the total rate
that the mix alone implies, the mix term of the usual mix/rate decomposition.

A bucket is flagged when ``m_t`` is both
- significant: ``|m_t|`` >= threshold x its noise, the robust spread of ``m`` over the previous
  ``NOISE_CYCLES`` cycles, floored at the multinomial sampling spread of the shares;
- material: ``|m_t|`` >= ``MIN_EFFECT``. With many orders a mix move of a few percent is
  measured precisely, but it is no reason to page a risk team.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from monitor.detect.results import AnomalySegment, relative_change

BASELINE_CYCLES = 4  # baseline share: median of the same phase over this many cycles
MIN_BASELINE_CYCLES = 2
REFERENCE_CYCLES = 4  # segment rates pooled over this many cycles before the bucket
NOISE_CYCLES = 8  # spread of m over this many cycles before the bucket
MIN_NOISE_CYCLES = 3
MAD_TO_SD = 1.4826
MIN_EFFECT = 0.10  # the mix must move the expected total rate by at least 10 %
# A thin segment's rate is pooled with the total's, weighted by this many denominator
# events, so a segment with 3 orders and 1 fraud does not count as a 33 % segment.
PRIOR_EVENTS = 50.0


@dataclass(frozen=True)
class MixSeries:
    """The mix-implied relative change of the total rate for one dimension."""

    dimension: str
    values: list[str]
    effect: np.ndarray  # m_t; NaN where not judged
    z: np.ndarray  # m_t / noise
    share: np.ndarray  # (values x buckets) observed shares
    baseline_share: np.ndarray  # (values x buckets)
    contribution: np.ndarray  # (values x buckets) each value's part of m_t


@dataclass(frozen=True)
class MixRun:
    """Consecutive flagged buckets of one sign: one mix episode."""

    start: int
    end: int | None  # exclusive; None when still flagged at the last judged bucket
    direction: str
    score: float  # largest |z| in the run
    effect: float  # mean m over the run
    accepted: bool  # persisted for accept_after buckets: the new mix is the new normal
    evidence: dict  # for "why it fired": dimension, segments whose share moved most


def mix_series(dimension: str, values: list[str], numerators: np.ndarray, denominators: np.ndarray,
               *, period: int | None, min_volume: float = 0.0) -> MixSeries:
    """``numerators``/``denominators``: (values x buckets) for the values of one dimension,
    which together make up the total."""
    num = np.nan_to_num(np.asarray(numerators, dtype=float))
    den = np.nan_to_num(np.asarray(denominators, dtype=float))
    k, n = den.shape
    cycle = int(period) if period else 7  # no seasonality: lags of 7 buckets (a week of days)
    total = den.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, den / np.where(total > 0, total, 1.0), np.nan)
    share[:, total < max(min_volume, 1e-12)] = np.nan

    # baseline share: median of the same phase in the previous cycles (NaN until enough)
    lagged = np.full((BASELINE_CYCLES, k, n), np.nan)
    for c in range(1, BASELINE_CYCLES + 1):
        lag = c * cycle
        if lag < n:
            lagged[c - 1, :, lag:] = share[:, :-lag]
    enough = np.sum(np.isfinite(lagged[:, 0, :]), axis=0) >= MIN_BASELINE_CYCLES
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN phases before enough history
        base = np.nanmedian(lagged, axis=0)
    base[:, ~enough] = np.nan
    base = base / np.nansum(base, axis=0, keepdims=True)

    # reference rates: pooled over the window before the bucket, shrunk towards the total
    window = REFERENCE_CYCLES * cycle
    ref_num, ref_den = _trailing_sum(num, window), _trailing_sum(den, window)
    with np.errstate(invalid="ignore", divide="ignore"):
        total_rate = ref_num.sum(axis=0) / ref_den.sum(axis=0)
    rate = (ref_num + PRIOR_EVENTS * total_rate) / (ref_den + PRIOR_EVENTS)

    expected_total = np.nansum(base * rate, axis=0)
    gap = rate - expected_total
    with np.errstate(invalid="ignore", divide="ignore"):
        contribution = (share - base) * gap / expected_total
        effect = np.nansum(contribution, axis=0)
        # sampling spread of the shares alone (multinomial with this bucket's volume)
        floor = np.sqrt(np.nansum(base * gap ** 2, axis=0) / np.where(total > 0, total, np.nan)) / expected_total
    judged = enough & np.isfinite(share).all(axis=0) & (expected_total > 0) & np.isfinite(total_rate)
    effect = np.where(judged, effect, np.nan)

    # noise: robust spread of m (centred on 0 by construction) over the previous cycles
    spread = MAD_TO_SD * pd.Series(np.abs(effect)).rolling(
        NOISE_CYCLES * cycle, min_periods=MIN_NOISE_CYCLES * cycle).median().shift(1).to_numpy()
    noise = np.fmax(spread, floor)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(noise > 0, effect / noise, np.nan)
    return MixSeries(dimension, list(values), effect, z, share, base, contribution)


def mix_runs(mixes: list[MixSeries], *, threshold: float, direction: str, accept_after: int) -> list[MixRun]:
    """Mix episodes over all dimensions: a bucket is flagged when some dimension's mix
    effect is significant and material in an allowed direction; consecutive flagged buckets
    of one sign are one run (buckets not judged neither break nor extend it). A run that
    lasts ``accept_after`` buckets is accepted: later flagged buckets of the same run are the
    new normal, not a new episode."""
    if not mixes:
        return []
    effect = np.vstack([m.effect for m in mixes])
    z = np.vstack([m.z for m in mixes])
    allowed = np.isfinite(z) & (np.abs(z) >= threshold) & (np.abs(effect) >= MIN_EFFECT)
    if direction == "up":
        allowed &= z > 0
    elif direction == "down":
        allowed &= z < 0
    strength = np.where(allowed, np.abs(z), 0.0)
    best = np.argmax(strength, axis=0)
    flagged = allowed.any(axis=0)
    sign = np.sign(z[best, np.arange(z.shape[1])])
    judged = np.isfinite(effect).any(axis=0)
    n = flagged.size
    runs: list[MixRun] = []
    t = 0
    while t < n:
        if not flagged[t]:
            t += 1
            continue
        members, u = [t], t + 1
        while u < n and len(members) < accept_after:
            if flagged[u] and sign[u] == sign[t]:
                members.append(u)
            elif judged[u]:
                break
            u += 1
        accepted = len(members) >= accept_after
        last = members[-1]
        end = last + 1 if accepted or judged[last + 1:].any() else None
        idx = np.array(members)
        dim = int(np.bincount(best[idx]).argmax())
        runs.append(MixRun(
            start=t, end=end, direction="up" if sign[t] > 0 else "down",
            score=float(strength[:, idx].max()), effect=float(np.mean(effect[dim, idx])),
            accepted=accepted, evidence={**_evidence(mixes[dim], idx), "threshold_sd": float(threshold),
                                         "min_effect": MIN_EFFECT}))
        if accepted:  # skip the rest of the run: it is the new normal
            u = last + 1
            while u < n and (flagged[u] and sign[u] == sign[t] or not judged[u]):
                u += 1
        t = u
    return runs


def _evidence(mix: MixSeries, idx: np.ndarray, top: int = 3) -> dict:
    contribution = np.nanmean(mix.contribution[:, idx], axis=1)
    order = np.argsort(-np.abs(np.nan_to_num(contribution)))[:top]
    return {
        "dimension": mix.dimension,
        "implied_relative_change": float(np.nanmean(mix.effect[idx])),
        "segments": [{
            "value": mix.values[i],
            "baseline_share": float(np.nanmean(mix.baseline_share[i, idx])),
            "share": float(np.nanmean(mix.share[i, idx])),
            "implied_relative_change": float(contribution[i]),
        } for i in order],
    }


def merge_runs(segments: list, runs: list[MixRun], *, observed: np.ndarray, expected: np.ndarray,
               volume: np.ndarray) -> list:
    """The total's anomaly segments with the mix episodes folded in. A run that overlaps or
    touches a segment of the same direction, starting no later than one bucket after it,
    is the same episode: the segment starts at the earlier of the two and carries the mix
    evidence (one page). Any other run is a segment of kind ``mix_shift``: a mix move that
    begins while the total has been off for a while is news to whoever handles that incident."""
    out = list(segments)
    for run in runs:
        run_end = math.inf if run.end is None else run.end
        why = {"mix": {**run.evidence, "score": run.score}}
        hit = next((i for i, seg in enumerate(out) if seg.direction == run.direction and run.start <= seg.start + 1
                    and seg.start <= run_end), None)
        if hit is not None:
            seg = out[hit]
            out[hit] = replace(seg, start=min(seg.start, run.start), score=max(seg.score, run.score),
                               why={**why, **(seg.why or {})})
            continue
        stop = observed.size if run.end is None else run.end
        span = slice(run.start, stop)
        ok = np.isfinite(observed[span]) & np.isfinite(expected[span])
        weights = volume[span][ok]
        seen = float(np.average(observed[span][ok], weights=weights)) if weights.sum() > 0 else math.nan
        base = float(np.average(expected[span][ok], weights=weights)) if weights.sum() > 0 else math.nan
        out.append(AnomalySegment(
            start=run.start, end=run.end, direction=run.direction, kind="mix_shift", baseline=base,
            observed=seen, relative_change=relative_change(seen, base), score=run.score,
            accepted=run.accepted, accepted_at=run.end if run.accepted else None, why=why))
    return sorted(out, key=lambda seg: seg.start)


def _trailing_sum(x: np.ndarray, window: int) -> np.ndarray:
    """Sum over the ``window`` buckets before each bucket (the bucket itself excluded)."""
    c = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(x, axis=1)], axis=1)
    idx = np.arange(x.shape[1])
    return c[:, idx] - c[:, np.maximum(idx - window, 0)]
