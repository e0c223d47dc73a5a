"""Detection for ``kind: distribution``: each bucket's histogram against its baseline.

The statistic is Pearson's chi-square of the bucket's counts against the baseline's
shares (pooled over the trailing baseline buckets). Its null behaviour is known at every
volume, which a fixed PSI threshold's is not (PSI > 0.2 fires on noise at 10 events and
misses real moves at 100,000):

- multinomial noise: mean K-1, variance 2(K-1) + (sum 1/p - K^2 - 2K + 2)/n, which is
  large for sparse buckets at small n; matched by a scaled chi-square (moments);
- the baseline's shares are estimated from N0 events: the statistic grows by (1 + n/N0);
- real histograms drift between quiet buckets more than multinomial noise says, by a share
  of the volume: the variance of a share grows by (1 + n kappa). kappa is fitted on the
  baseline buckets themselves (median, robust), so at 100,000 events a bucket the test
  asks for a move larger than day-to-day drift, and at 1,000 nearly for the multinomial.

The score is the normal quantile of the chi-square's tail probability, signed by the move
of the mean bucket value (up: mass moved to higher buckets), so ``direction`` applies.
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy import stats

from monitor.buckets import PSEUDO
from monitor.detect.kind_runs import Step, detection, walk
from monitor.detect.options import DetectOptions
from monitor.detect.results import SeriesDetection

MIN_EVENTS = 10  # buckets with fewer events are not judged
MIN_EXPECTED = 5.0  # events a merged bin expects, as the chi-square rule of thumb asks
MIN_SHARE = 0.01


def detect_distributions(counts: np.ndarray, values: np.ndarray, *, options: DetectOptions,
                         exclude: np.ndarray | None = None) -> list[SeriesDetection]:
    """``counts``: series x buckets x bins; ``values``: the bins' numeric values."""
    counts = np.nan_to_num(np.asarray(counts, float))
    n_series, n, k_bins = counts.shape
    totals = counts.sum(axis=2)
    floor = max(float(options.min_volume), MIN_EVENTS)
    valid = totals >= floor
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_value = (counts * values).sum(axis=2) / totals

    def step(t: int, mask: np.ndarray) -> Step:
        lo = t - mask.shape[1]
        window = counts[:, lo:t, :] * mask[:, :, None]
        base_counts = window.sum(axis=1) + PSEUDO
        n0 = base_counts.sum(axis=1)
        p0 = base_counts / n0[:, None]
        groups = merge_bins(p0, totals[:, t])
        kappa = _drift(window @ groups, mask, p0[:, None, :] @ groups, n0)
        z1, _ = _score(counts[:, t, :], p0, n0, kappa, values, groups)
        z2 = np.full(n_series, np.nan)
        if t >= 1:
            both = valid[:, t - 1] & valid[:, t]
            pooled = counts[:, t - 1, :] + counts[:, t, :]
            z2 = np.where(both, _score(pooled, p0, n0, kappa, values, merge_bins(p0, pooled.sum(axis=1)))[0], np.nan)
        expected = (p0 * values).sum(axis=1)
        return Step(z1=z1, z2=z2, expected=expected, observed=mean_value[:, t], sd=np.full(n_series, np.nan))

    mult = options.multiplier
    ex = None if exclude is None else np.broadcast_to(np.asarray(exclude, bool), (n_series, n))
    arrays, anomalous, segments = walk(n_series, n, valid, ex, step, multiplier=mult, direction=options.direction,
                                       accept_after=options.accept_after, two_sided=True)
    params = {"detector": "distribution", "test": "chi-square, volume-aware (multinomial + drift)",
              "min_events": floor, "bins": int(k_bins), "direction": options.direction}
    return [detection(arrays, anomalous, segments, i, mult, params) for i in range(n_series)]


def merge_bins(p0: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Adjacent bins merged until each expects about MIN_EXPECTED events at volume ``n``
    (the chi-square needs it; one event in an empty tail bin is not a shift). Bins are
    grouped by where the middle of their mass falls on a grid of MIN_EXPECTED/n shares, so
    a heavy bin keeps its own group. A (series x bins x groups) 0/1 matrix."""
    k = p0.shape[1]
    step = np.maximum(MIN_EXPECTED / np.maximum(np.asarray(n, float), 1.0), MIN_SHARE)
    centre = np.cumsum(p0, axis=1) - p0 / 2.0
    raw = np.floor(centre / step[:, None])
    ids = np.concatenate([np.zeros((p0.shape[0], 1)), np.cumsum(np.diff(raw, axis=1) > 0, axis=1)], axis=1).astype(int)
    return (ids[:, :, None] == np.arange(k)[None, None, :]).astype(float)


def _score(c: np.ndarray, p0: np.ndarray, n0: np.ndarray, kappa: np.ndarray,
           values: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signed score and PSI of counts ``c`` (series x bins) against shares ``p0``, the
    chi-square over the merged ``groups``."""
    n = c.sum(axis=1)
    shift = (c * values).sum(axis=1)
    q = (c + PSEUDO) / (n[:, None] + PSEUDO * p0.shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = shift / n - (p0 * values).sum(axis=1)
        psi = ((q - p0) * np.log(q / p0)).sum(axis=1)
    c = np.einsum("sb,sbg->sg", c, groups)
    p0 = np.einsum("sb,sbg->sg", p0, groups)
    used = p0 > 0
    k = used.sum(axis=1).astype(float)
    safe = np.where(used, p0, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        chi2 = np.where(used, (c - n[:, None] * safe) ** 2 / (n[:, None] * safe), 0.0).sum(axis=1)
        # exact multinomial variance of Pearson's statistic (what is left sparse has a long tail)
        var = 2.0 * (k - 1) + (np.where(used, 1.0 / safe, 0.0).sum(axis=1) - k * k - 2 * k + 2) / n
        var = np.maximum(var, 2.0 * (k - 1))
        # multinomial part (shares estimated from N0 events add n/N0), then drift: mean
        # n kappa (k-1), carried by few groups when a few bins hold most of the mass, so
        # its tail is that of a chi-square with 1/sum(p^2) degrees of freedom at most
        base = 1.0 + n / n0
        mu_m, var_m = (k - 1) * base, var * base * base
        mu_d = n * kappa * (k - 1)
        df_d = np.minimum(k - 1, 1.0 / (p0 * p0).sum(axis=1))
        # (+ 4 mu_d: the cross term of drift and counting noise, 2 sum a_b m_b / (n p_b))
        mu, v = mu_m + mu_d, var_m + 2.0 * mu_d * mu_d / df_d + 4.0 * mu_d * base
        a = v / (2.0 * mu)  # statistic ~ a * chi2(df), by the first two moments
        df = 2.0 * mu * mu / v
        p = stats.chi2.sf(chi2 / a, df)
        z = stats.norm.isf(np.clip(p, 1e-300, 0.5))  # only excess divergence counts
    ok = (n > 0) & (k >= 2)
    return np.where(ok, np.where(shift >= 0, z, -z), np.nan), psi


def _drift(window: np.ndarray, mask: np.ndarray, p0: np.ndarray, n0: np.ndarray) -> np.ndarray:
    """kappa per series: how much more than multinomial the baseline buckets' shares vary,
    per event (window: series x buckets x groups, p0: series x 1 x groups). Each baseline
    bucket's chi-square over its multinomial expectation is 1 + n kappa on average. Each
    bucket is in p0 itself, hence the (1 - n/N0) factor."""
    n_s = window.sum(axis=2)
    used = p0 > 0
    k = used.sum(axis=2).astype(float)[:, 0]
    safe = np.where(used, p0, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        chi2 = np.where(used, (window - n_s[:, :, None] * safe) ** 2 / (n_s[:, :, None] * safe), 0.0).sum(axis=2)
        ratio = chi2 / ((k[:, None] - 1) * np.maximum(1.0 - n_s / n0[:, None], 0.05))
        est = np.where(mask & (n_s > 0), (ratio - 1.0) / n_s, np.nan)
        # a mean (drift is skewed: a median would miss it), with buckets beyond 5 medians
        # of the excess clipped so an odd bucket does not blind the test
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a series with no baseline yet: 0
            med = np.nanmedian(est, axis=1, keepdims=True)
            cap = 5.0 * np.maximum(med, 0.0) + np.nanmedian(np.abs(est - med), axis=1, keepdims=True) * 5.0
            kappa = np.nanmean(np.minimum(est, med + cap), axis=1)
    return np.where(np.isfinite(kappa), np.maximum(kappa, 0.0), 0.0)


