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
    parts: "_Parts"  # per value: observed share, baseline share, part of m_t, for given buckets

    def columns(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(share, baseline share, contribution), values x the buckets ``idx``: computed on
        demand, so a dimension of 200,000 sellers keeps no values x buckets array."""
        idx = np.asarray(idx)
        k, step = len(self.parts.denominators), self.parts.chunk_rows
        got = [self.parts.columns(idx, self.parts.rows(lo, lo + step)) for lo in range(0, k, step)]
        return tuple(np.vstack([g[i] for g in got]) for i in range(3))


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


@dataclass(frozen=True)
class _Parts:
    """What a value's share, baseline share and contribution are computed from: the
    per-value rows (kept by the caller anyway) and a few per-bucket totals."""

    numerators: object  # sequence of per-value rows (or a values x buckets array)
    denominators: object
    total: np.ndarray  # denominator of every value per bucket
    total_rate: np.ndarray  # rate of the reference window before each bucket
    cycle: int
    min_volume: float
    chunk_rows: int
    base_sum: np.ndarray | None = None  # sum of unnormalised baseline shares over values
    expected_total: np.ndarray | None = None

    def rows(self, lo: int = 0, hi: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        hi = len(self.denominators) if hi is None else hi
        num = np.nan_to_num(np.asarray(np.vstack(self.numerators[lo:hi]), dtype=float))
        den = np.nan_to_num(np.asarray(np.vstack(self.denominators[lo:hi]), dtype=float))
        return num, den

    def share_base_rate(self, idx: np.ndarray, num: np.ndarray, den: np.ndarray):
        """Share, unnormalised baseline share and pooled reference rate of some values at the
        buckets ``idx``."""
        total = self.total
        with np.errstate(invalid="ignore", divide="ignore"):
            full = np.where(total > 0, den / np.where(total > 0, total, 1.0), np.nan)
        full[:, total < max(self.min_volume, 1e-12)] = np.nan
        share = full[:, idx]
        # baseline share: median of the same phase in the previous cycles (NaN until enough)
        lagged = np.full((BASELINE_CYCLES, den.shape[0], len(idx)), np.nan)
        for c in range(1, BASELINE_CYCLES + 1):
            back = idx - c * self.cycle
            ok = back >= 0
            lagged[c - 1][:, ok] = full[:, back[ok]]
        del full
        enough = np.sum(np.isfinite(lagged[:, 0, :]), axis=0) >= MIN_BASELINE_CYCLES if den.shape[0] else \
            np.zeros(len(idx), bool)
        base = _nanmedian_first_axis(lagged)
        del lagged
        base[:, ~enough] = np.nan
        # reference rates: pooled over the window before the bucket, shrunk towards the total
        window = REFERENCE_CYCLES * self.cycle
        lo = np.maximum(idx - window, 0)
        cn = np.concatenate([np.zeros((num.shape[0], 1)), np.cumsum(num, axis=1)], axis=1)
        ref_num = cn[:, idx] - cn[:, lo]
        del cn
        cd = np.concatenate([np.zeros((den.shape[0], 1)), np.cumsum(den, axis=1)], axis=1)
        ref_den = cd[:, idx] - cd[:, lo]
        del cd
        rate = (ref_num + PRIOR_EVENTS * self.total_rate[idx]) / (ref_den + PRIOR_EVENTS)
        return share, base, rate, enough

    def columns(self, idx: np.ndarray, rows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        share, base, rate, _ = self.share_base_rate(idx, *rows)
        expected = self.expected_total[idx]
        with np.errstate(invalid="ignore", divide="ignore"):
            base = base / self.base_sum[idx]
            contribution = (share - base) * (rate - expected) / expected
        return share, base, contribution


def mix_series(dimension: str, values: list[str], numerators, denominators,
               *, period: int | None, min_volume: float = 0.0, chunk_rows: int | None = None) -> MixSeries:
    """``numerators``/``denominators``: (values x buckets) for the values of one dimension,
    which together make up the total (2-D arrays, or sequences of per-value rows).

    Values are taken ``chunk_rows`` at a time (default: all), in two passes: the first sums
    the baseline shares and expected rates over values, the second the mix effect. So a
    dimension with 200,000 values needs memory for one chunk, not for all of them."""
    k = len(denominators)
    if not k:
        raise ValueError("mix_series needs at least one value")
    n = len(np.asarray(denominators[0]))
    cycle = int(period) if period else 7  # no seasonality: lags of 7 buckets (a week of days)
    step = max(1, min(chunk_rows or k, k))
    num_total, total = np.zeros(n), np.zeros(n)
    for lo in range(0, k, step):
        num, den = _Parts(numerators, denominators, total, total, cycle, min_volume, step).rows(lo, lo + step)
        num_total += num.sum(axis=0)
        total += den.sum(axis=0)
    window = REFERENCE_CYCLES * cycle
    with np.errstate(invalid="ignore", divide="ignore"):
        total_rate = (_trailing_sum(num_total[None, :], window) / _trailing_sum(total[None, :], window))[0]
    parts = _Parts(numerators, denominators, total, total_rate, cycle, min_volume, step)
    idx = np.arange(n)

    # pass 1: sums over values of the baseline shares and of baseline share x rate
    base_sum, weighted = np.zeros(n), np.zeros(n)
    cached = None
    for lo in range(0, k, step):
        rows = parts.rows(lo, lo + step)
        share, base, rate, enough = parts.share_base_rate(idx, *rows)
        base_sum += np.nansum(base, axis=0)
        weighted += np.nansum(base * rate, axis=0)
        if lo == 0:
            judged_shares = np.isfinite(share).all(axis=0)
            enough_all = enough
        else:
            judged_shares &= np.isfinite(share).all(axis=0)
        if step >= k:  # one chunk: nothing to recompute
            cached = (share, base, rate)
        del share, base, rate
    with np.errstate(invalid="ignore", divide="ignore"):
        expected_total = weighted / base_sum  # = sum over values of normalised base x rate
    parts = replace(parts, base_sum=base_sum, expected_total=expected_total)

    # pass 2: the mix effect and the sampling floor
    effect, spread_sq = np.zeros(n), np.zeros(n)
    for lo in range(0, k, step):
        share, base, rate = cached if cached is not None else parts.share_base_rate(idx, *parts.rows(lo, lo + step))[:3]
        with np.errstate(invalid="ignore", divide="ignore"):
            base = base / base_sum
            gap = rate - expected_total
            effect += np.nansum((share - base) * gap / expected_total, axis=0)
        spread_sq += np.nansum(base * gap ** 2, axis=0)
        del share, base, rate, gap
    with np.errstate(invalid="ignore", divide="ignore"):
        # sampling spread of the shares alone (multinomial with this bucket's volume)
        floor = np.sqrt(spread_sq / np.where(total > 0, total, np.nan)) / expected_total
    judged = enough_all & judged_shares & (expected_total > 0) & np.isfinite(total_rate)
    effect = np.where(judged, effect, np.nan)

    # noise: robust spread of m (centred on 0 by construction) over the previous cycles
    spread = MAD_TO_SD * pd.Series(np.abs(effect)).rolling(
        NOISE_CYCLES * cycle, min_periods=MIN_NOISE_CYCLES * cycle).median().shift(1).to_numpy()
    noise = np.fmax(spread, floor)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(noise > 0, effect / noise, np.nan)
    return MixSeries(dimension, list(values), effect, z, parts)


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
    share, base, part = mix.columns(idx)
    contribution = np.nanmean(part, axis=1)
    order = np.argsort(-np.abs(np.nan_to_num(contribution)))[:top]
    return {
        "dimension": mix.dimension,
        "implied_relative_change": float(np.nanmean(mix.effect[idx])),
        "segments": [{
            "value": mix.values[i],
            "baseline_share": float(np.nanmean(base[i])),
            "share": float(np.nanmean(share[i])),
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


def _nanmedian_first_axis(x: np.ndarray) -> np.ndarray:
    """np.nanmedian(x, axis=0) for a short first axis (the lags), by one sort: numpy's own
    takes a masked-array path per call that cost more than the rest of the mix test."""
    ordered = _sort_first_axis(x)  # NaN sorts last
    count = np.isfinite(x).sum(axis=0)
    low = np.take_along_axis(ordered, np.maximum((count - 1) // 2, 0)[None], axis=0)[0]
    high = np.take_along_axis(ordered, np.maximum(count // 2, 0)[None], axis=0)[0]
    return np.where(count > 0, (low + high) / 2, np.nan)


def _sort_first_axis(x: np.ndarray) -> np.ndarray:
    """np.sort(x, axis=0), NaN last. A short first axis (the lags) is sorted by an odd-even
    transposition network of elementwise min/max over whole planes: numpy's sort along a
    strided first axis of 4 cost twice as much. fmin keeps the number of a (number, NaN)
    pair and maximum the NaN, so NaN sinks to the end as in np.sort."""
    if x.shape[0] > 8:
        return np.sort(x, axis=0)
    planes = [x[i].copy() for i in range(x.shape[0])]
    for step in range(len(planes)):
        for i in range(step % 2, len(planes) - 1, 2):
            low, high = planes[i], planes[i + 1]
            planes[i], planes[i + 1] = np.fmin(low, high), np.maximum(low, high)
    return np.stack(planes) if planes else x.copy()


def _trailing_sum(x: np.ndarray, window: int) -> np.ndarray:
    """Sum over the ``window`` buckets before each bucket (the bucket itself excluded)."""
    c = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(x, axis=1)], axis=1)
    idx = np.arange(x.shape[1])
    return c[:, idx] - c[:, np.maximum(idx - window, 0)]
