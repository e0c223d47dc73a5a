"""Detection for ``kind: mean``: each bucket's mean judged by its standard error.

A bucket's mean is sum/count of its parts; its sampling variance is s^2/count, where s^2
is the within-bucket variance pooled over the baseline (sum of squares minus sum^2/count),
so a mean over 5 orders gets a band ~100 times wider than one over 50,000. On top, the
means of quiet buckets wander more than sampling explains (weekday mix, prices): that
over-dispersion tau^2 is fitted on the baseline so the median standardised squared
residual is that of a normal (0.455), which ignores the odd outlier. The score of bucket t
is (mean_t - baseline) / sqrt(tau^2 + s^2/count_t + var(baseline)).
"""
from __future__ import annotations

import warnings

import numpy as np

from monitor.detect.kind_runs import Step, detection, walk
from monitor.detect.options import DetectOptions
from monitor.detect.results import SeriesDetection

MIN_COUNT = 20  # below this many values a bucket's mean is not judged (the CLT is not there yet)
CHI2_1_MEDIAN = 0.4549364
HUBER_C2 = 2.5**2
HUBER_CONSISTENCY = 0.9776  # E[min(Z^2, 2.5^2)] for a standard normal Z
HUBER_EFFICIENCY = 0.9  # degrees of freedom of the clipped variance per baseline bucket, roughly


def detect_means(sums: np.ndarray, counts: np.ndarray, squares: np.ndarray, *, options: DetectOptions,
                 exclude: np.ndarray | None = None) -> list[SeriesDetection]:
    """One detection per row of the (series x buckets) parts."""
    sums, counts, squares = (np.asarray(a, float) for a in (sums, counts, squares))
    n_series, n = sums.shape
    floor = max(float(options.min_volume), MIN_COUNT)
    valid = np.isfinite(sums) & (counts >= floor)
    with np.errstate(divide="ignore", invalid="ignore"):
        means = np.where(valid, sums / np.where(counts > 0, counts, 1.0), np.nan)

    def step(t: int, mask: np.ndarray) -> Step:
        lo = t - mask.shape[1]
        w = mask.astype(float)
        S, C, Q, M = sums[:, lo:t] * w, counts[:, lo:t] * w, squares[:, lo:t] * w, means[:, lo:t]
        n_base = C.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            base = S.sum(axis=1) / n_base
            # within variance pooled over the baseline buckets, around each bucket's own mean
            within = (Q.sum(axis=1) - (S * S / np.where(C > 0, C, 1.0)).sum(axis=1)) / np.maximum(n_base - w.sum(1), 1.0)
            within = np.maximum(within, 0.0)
            v = within[:, None] / np.where(C > 0, C, np.nan)  # sampling variance of each baseline mean
            r2 = np.where(mask, (M - base[:, None]) ** 2, np.nan)
        tau2 = _overdispersion(r2, v, mask)
        k = mask.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            var_base = (tau2 + within / (n_base / np.maximum(k, 1))) / np.maximum(k, 1)
            var_t = tau2 + within / counts[:, t] + var_base
            sd = np.sqrt(var_t)
            # the over-dispersion is estimated from k buckets: where it dominates the
            # variance the score is t-like (Satterthwaite), and is read as such
            df_tau = HUBER_EFFICIENCY * np.maximum(k - 1, 1)
            # and skewed values (order amounts) leave a mean of few values with a long upper
            # tail: its sampling part is read as t with count - 1 degrees of freedom
            df = _satterthwaite([tau2 / var_t, within / counts[:, t] / var_t], [df_tau, counts[:, t] - 1.0])
            # positive values such as amounts are right-skewed: skewness of one value ~ CV^3 + 3 CV
            # (lognormal), of a mean of n values / sqrt(n); only its sampling share carries it
            cv = np.sqrt(within) / np.abs(base)
            skew_value = np.where(base > 0, cv ** 3 + 3.0 * cv, 0.0)
            z1 = deskew(t_to_z((means[:, t] - base) / sd, df),
                        skew_value / np.sqrt(counts[:, t]) * (within / counts[:, t] / var_t) ** 1.5)
            z2 = np.full(n_series, np.nan)
            if t >= 1:
                both = valid[:, t - 1] & valid[:, t]
                pooled = (sums[:, t - 1] + sums[:, t]) / (counts[:, t - 1] + counts[:, t])
                # two buckets: sampling variance halves with their count, tau^2 with 2 draws
                var2 = tau2 / 2.0 + within / (counts[:, t - 1] + counts[:, t]) + var_base
                n2 = counts[:, t - 1] + counts[:, t]
                df2 = _satterthwaite([tau2 / 2.0 / var2, within / n2 / var2], [df_tau, n2 - 2.0])
                z2 = np.where(both, deskew(t_to_z((pooled - base) / np.sqrt(var2), df2),
                                           skew_value / np.sqrt(n2) * (within / n2 / var2) ** 1.5), np.nan)
        typical = np.sqrt(tau2 + within / np.maximum(n_base / np.maximum(k, 1), 1.0) + var_base)
        return Step(z1=z1, z2=z2, expected=base, observed=means[:, t], sd=typical)

    mult = options.multiplier
    arrays, anomalous, segments = walk(n_series, n, valid, _mask(exclude, n_series, n), step,
                                       multiplier=mult, direction=options.direction,
                                       accept_after=options.accept_after, two_sided=True)
    params = {"detector": "mean", "noise": "standard error of the mean + over-dispersion", "min_count": floor,
              "direction": options.direction}
    return [detection(arrays, anomalous, segments, i, mult, params) for i in range(n_series)]


def _overdispersion(r2: np.ndarray, v: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """tau^2 >= 0 per row: the spread of the baseline means beyond their sampling variance.
    A start from the median of the squares (robust), then one clipped mean of squares
    (Huber at 2.5 sd; efficient, so the score's tails stay close to normal)."""
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a series with no baseline yet: NaN, then 0
        v_typ = np.nanmedian(np.where(mask, v, np.nan), axis=1)
        total0 = np.nanmedian(np.where(mask, r2, np.nan), axis=1) / CHI2_1_MEDIAN
        total0 = np.maximum(total0, v_typ)
        clipped = np.where(mask, np.minimum(r2, HUBER_C2 * total0[:, None]), np.nan)
        total = np.nanmean(clipped, axis=1) / HUBER_CONSISTENCY
        tau2 = total - np.nanmean(np.where(mask, v, np.nan), axis=1)
    return np.where(np.isfinite(tau2), np.maximum(tau2, 0.0), 0.0)


def _satterthwaite(shares: list[np.ndarray], dfs: list[np.ndarray]) -> np.ndarray:
    """Degrees of freedom of a variance made of parts (shares of it) each known with df."""
    with np.errstate(invalid="ignore", divide="ignore"):
        inv = sum(np.nan_to_num(sh) ** 2 / np.maximum(df, 1.0) for sh, df in zip(shares, dfs))
        return np.where(inv > 0, 1.0 / inv, 1e6)


def deskew(z: np.ndarray, skew: np.ndarray) -> np.ndarray:
    """An upper-tail score of a right-skewed statistic as the normal score of about the same
    tail probability: the first-order Cornish-Fisher quantile x = z + a (z^2 - 1), a = skew/6,
    solved for z (monotone in x). Only the upper tail: the lower one, lighter under right
    skew, keeps its normal reading, so the correction cannot add alarms."""
    a = np.maximum(np.nan_to_num(skew), 0.0) / 6.0
    with np.errstate(invalid="ignore", divide="ignore"):
        solved = np.where(a > 1e-9, (np.sqrt(np.maximum(1.0 + 4.0 * a * (a + z), 0.0)) - 1.0) / (2.0 * a), z)
    return np.where(z > 1.0, np.minimum(solved, z), z)


def t_to_z(z: np.ndarray, df: np.ndarray) -> np.ndarray:
    """A score that is t-distributed with ``df`` (the variance was estimated) as the normal
    score of the same tail probability, so one threshold fits every baseline size."""
    from scipy import stats

    with np.errstate(invalid="ignore"):
        p = stats.t.sf(np.abs(z), np.maximum(df, 1.0))
        return np.sign(z) * stats.norm.isf(np.maximum(p, 1e-300))


def _mask(exclude, n_series: int, n: int) -> np.ndarray | None:
    if exclude is None:
        return None
    ex = np.asarray(exclude, bool)
    return np.broadcast_to(ex, (n_series, n)) if ex.ndim == 1 else ex
