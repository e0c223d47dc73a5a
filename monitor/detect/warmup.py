"""Cold start: how a baseline begins before it can judge anything.

The first buckets (``warmup_length``) only initialise the state, by medians (pooled rates
for ratio metrics), and are not judged; they are shown against that initial state. A
series is judged only once its baseline has learnt from half a warm-up of observed buckets
(``min_learnt``), and a series whose warm-up had no data starts its level at its first
observation (``start_late_series``).
"""
from __future__ import annotations

import numpy as np

from monitor.detect.cusum import Cusum
from monitor.detect.noise import Noise
from monitor.detect.seasonal import compose, decompose, neutral_profile, quiet, seasonal_profile
from monitor.detect.state import Baseline


def warmup_length(n: int, period: int | None) -> int:
    """Buckets used to initialise the state (not judged): three cycles when the series has
    at least six, else half the series but at least two cycles (and at most n - 1)."""
    cycle = period or 7
    base = 3 * cycle
    if n < 2 * base:
        base = max(2 * cycle, n // 2)
    return min(base, max(n - 1, 0))


def min_learnt(warmup: int) -> int:
    """Buckets a series' baseline must have learnt from before it is judged: a sparse slice
    (above its volume floor a few hours a month) would otherwise be judged against a level
    set by its first one or two observations."""
    return max(warmup // 2, 1)


def initial_baseline(block: np.ndarray, den: np.ndarray | None, P: int, inner: int | None = None,
                     cycle_unseen: bool = False) -> Baseline:
    """Level, trend, seasonal profile and noise from the warm-up block (NaN where not usable):
    medians for sum metrics, pooled rates for ratio metrics (``den`` given). ``cycle_unseen``
    (a requested cycle not modelled yet): no trend and the level of the whole warm-up, since
    over less than two cycles a slope, or the last few buckets, is the cycle's phase."""
    n_series, W = block.shape
    if P > 1:
        S, mult = seasonal_profile(block, P, weights=den, inner=inner)
    else:
        mult = np.zeros(n_series, dtype=bool)
        S = neutral_profile(n_series, mult)
    phase = np.arange(W) % P
    desea = decompose(block, S[:, phase], mult[:, None])
    span = P if P > 1 else min(7, W)
    typical = np.nanmedian if den is None else _pooled(den)  # see seasonal_profile
    with quiet():
        last = typical(desea[:, W - span :], cols=slice(W - span, W)) if den is not None else typical(desea[:, W - span :], axis=1)
        first = typical(desea[:, :span], cols=slice(0, span)) if den is not None else typical(desea[:, :span], axis=1)
        trend = np.where(np.isfinite(last - first), (last - first) / max(W - span, 1), 0.0) if W >= 2 * span else np.zeros(n_series)
        # the median of the last cycle sits (span-1)/2 buckets before the warm-up's end
        overall = np.nanmedian(desea, axis=1) if den is None else typical(desea, cols=slice(0, W))
        level = np.where(np.isfinite(last), last + trend * (span - 1) / 2.0, overall)
        if cycle_unseen:
            trend = np.zeros(n_series)
            level = overall
    noise = Noise.from_warmup(desea, P if P > 1 else 1, block, den, level, S[:, phase], mult)
    learnt = np.sum(np.isfinite(block), axis=1)
    return Baseline(level, np.nan_to_num(trend, nan=0.0), S, mult, noise, learnt)


def unseen_swing(block: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Per row, the largest departure of a warm-up value from the initial level, either
    way: what a cycle the baseline does not model yet (an hourly series' first two days,
    night to day x2 to x8) has been seen to do. Its hours are not noise: they do not
    cancel in differences one bucket apart, and their spread has no Gaussian tail to
    extrapolate (a swing is bounded), so the spike band is widened by this swing, not
    scaled by it. One width for both sides, so the band stored and shown is the one judged
    whichever side a bucket falls. 0 where a row has no level or no value."""
    if block.shape[1] == 0:
        return np.zeros(block.shape[0])
    with np.errstate(invalid="ignore"), quiet():
        swing = np.nanmax(np.abs(block - level[:, None]), axis=1)
    return np.nan_to_num(swing, nan=0.0)


def show_warmup(baseline: Baseline, expected: np.ndarray, sd: np.ndarray, phase: np.ndarray,
                den: np.ndarray | None, W: int) -> None:
    """Warm-up buckets are shown against the initial state (level, no trend), not judged."""
    for t in range(W):
        pred = compose(baseline.level, baseline.season[:, phase[t]], baseline.mult)
        pred = np.clip(pred, 0.0, 1.0) if den is not None else pred
        expected[:, t] = pred
        sd[:, t], _ = baseline.noise.sd(pred, baseline.season[:, phase[t]], baseline.mult,
                                        den[:, t] if den is not None else None)


def start_late_series(baseline: Baseline, cusum: Cusum | None, x: np.ndarray, j: int, usable: np.ndarray) -> None:
    """A series whose warm-up had no data starts its level (and the CUSUM's reference) at
    its first usable observation ``x`` (seasonal phase ``j``)."""
    fresh = ~np.isfinite(baseline.level) & usable
    if fresh.any():
        baseline.start(fresh, x, j)
        if cusum is not None:
            cusum.start_level(fresh, baseline.level)


def _pooled(den: np.ndarray):
    """Pooled (denominator-weighted) mean of the given columns of each row."""

    def mean(x: np.ndarray, *, cols: slice) -> np.ndarray:
        w = np.where(np.isfinite(x), den[:, cols], 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.sum(np.nan_to_num(x) * w, axis=1) / np.sum(w, axis=1)

    return mean
