"""How many core sd make a page: heavy tails, and a baseline that has seen little.

The noise model (``noise.py``) estimates the *core* scale of a series robustly (MADs, Huber):
right for where most buckets fall, silent on how often real series jump far beyond it.
The spike threshold promises a tail probability p (4 sd for daily buckets, 4.69 sd for
hourly ones: ``per_day_threshold``), i.e. about one false spike per series every ~85
years at medium. Two things break that promise on real series, and each gives a factor on
the band (the score is divided by it, so a score of 4 keeps meaning "p"):

- *Heavy tails*: tweet volumes, CPU and network series burst to 10-100 core sd every few
  days. The tail of |residual| is taken as exponential beyond an upper percentile, its
  scale read off the 75th percentile and that one, and extrapolated to p; the factor is
  that extrapolation over the same one for Gaussian residuals (never below 1: a light
  tail is not made more sensitive than the Gaussian promise). The upper percentile is
  as far out as the warm-up supports: ``TAIL_BEYOND`` residuals beyond it, between the
  95th (40 to 100 residuals) and the 99th (500 and more; a week of hours gives 98.5 %).
  The further out, the less the extrapolation to p: the 95th percentile alone gave 1.8
  for Student-t(3) noise, whose exact factor is 17.5, and the bursty hourly series paged
  about 20 times a month. A few anomalies in the warm-up move the 75th percentile hardly,
  the upper one by a few residuals' worth. Needs ``MIN_TAIL_SAMPLE`` residuals; with
  fewer the tail is taken as Gaussian.
- *Learnt live*: the warm-up holds few residuals (a new hourly metric: 48 to 336
  differences), and the first weeks of tweet volumes paged 2-3 times more than later, all
  on spikes. So the percentiles are re-read as judged residuals accrue
  (``TailHistory``): every judged bucket's |residual| in core sd goes into a per-series
  histogram, spikes included (a tail that forgets its own exceedances keeps promising a
  rate the series does not keep), once per run of anomalous buckets (runs declustering,
  as in extreme-value practice: a burst of hours is one surprise, and a labelled anomaly
  of 20 hours must not make the series deaf for a month), level-shift buckets not at all.
  The factor is re-read once a day (``refresh_every``), from the day's start on.
- *Few observations* (cold start): a variance estimated from df residuals predicts the next
  one with Student-t tails (df), not Gaussian ones; df grows with the buckets the baseline
  has learnt from (``variance_df``), so bands start wide and narrow as it learns, and a
  new metric pages only on a large change in its first days.
- *What a band really promises*: ``gpd_fit`` fits a Generalized Pareto tail to a series'
  |residual| histogram (``gpd_rate``, ``gpd_quantile``). On real hourly series its shape is
  heavy (xi 0.3-0.4 on the NAB dev |scores|), so the exponential extrapolation above
  promises far less than it keeps: ~1 false page per series-month measured where the
  threshold promises 0.002 (``benchmarks/nab_calibration.py``). Judging at the GPD
  quantile of the promised rate comes closer (0.2 later) but leaves most labelled NAB
  anomalies inside the band (live replay: 20 of 77 dev windows hit instead of 45, NAB
  standard 19.9 instead of 46.4), so the judge keeps the exponential factor and the GPD
  measures what it promises.
"""
from __future__ import annotations

import functools
import math

import numpy as np

MIN_TAIL_SAMPLE = 40  # residuals needed to see a tail at all (the 95th percentile of 40 is the 2nd largest)
TAIL_PROBS = (0.75, 0.95, 0.99)  # lower percentile; the upper one lies between the last two
TAIL_BEYOND = 5  # residuals beyond the upper percentile: what its estimate rests on
MAX_TAIL = 25.0  # bound on the heavy-tail factor: past it, the tail estimate is noise
# |residual| histogram: bin 0 is [0, 1e-3), then geometric bins 10 % wide up to 1e5 core sd
# (a value read from them is within 5 %, below the sampling error of a 99th percentile
# of 500 residuals; the factor is capped at MAX_TAIL long before 1e5)
HIST_STEP = 1.1
HIST_EDGES = np.concatenate([[0.0], np.geomspace(1e-3, 1e5, int(round(np.log(1e8) / np.log(HIST_STEP))) + 1)])
# Generalized Pareto tail (``gpd_fit``, what a band promises on a series' own tail):
# fitted to the top GPD_EXCESS of the |residuals|; with few excesses the shape leans on a
# heavy-tailed prior: xi = 0.25, a Student-t(4) tail (the usual robust default; the |score|
# tails of the NAB dev series measure 0.2-0.37 by category), worth GPD_PRIOR_K excesses
GPD_EXCESS = 0.10
GPD_XI_PRIOR = 0.25
GPD_PRIOR_K = 10.0
MAX_DF = 4096  # beyond this the Student-t factor is 1 to 3 decimals
# Asymptotic efficiency of the MAD as a scale estimate for normal data (vs the sd): the
# warm-up's MAD of n differences is as precise as a variance from 0.37 n residuals.
MAD_EFFICIENCY = 0.368
# |Z| for a standard normal Z: 75th and 95th percentiles
GAUSS_Q = (1.1503493803760083, 1.959963984540054)


def tail_quantiles(u: np.ndarray) -> np.ndarray:
    """(N, 3) per row: the 75th percentile of |u|, an upper percentile, and its
    probability (``TAIL_PROBS``, ``TAIL_BEYOND``); u: residuals in core sd, NaN = missing.
    NaN where a row has fewer than ``MIN_TAIL_SAMPLE``."""
    a = np.sort(np.abs(u), axis=1)  # NaN last
    m = np.sum(np.isfinite(a), axis=1)
    q = np.full((u.shape[0], 3), np.nan)
    enough = m >= MIN_TAIL_SAMPLE
    if enough.any():
        a, m = a[enough], m[enough]
        hi = np.clip(1.0 - TAIL_BEYOND / m, TAIL_PROBS[1], TAIL_PROBS[2])
        q[enough, 0] = _quantile_sorted(a, m, np.full(m.shape, TAIL_PROBS[0]))
        q[enough, 1] = _quantile_sorted(a, m, hi)
        q[enough, 2] = hi
    return q


def _quantile_sorted(a: np.ndarray, m: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Per-row quantile ``p`` of the first ``m`` (finite, sorted) values of each row of ``a``,
    linear interpolation as numpy's default."""
    pos = p * (m - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, m - 1)
    rows = np.arange(a.shape[0])
    return a[rows, lo] + (pos - lo) * (a[rows, hi] - a[rows, lo])


class TailHistory:
    """Per series, a histogram of the |residuals| seen so far (core sd units, ``HIST_EDGES``):
    what the tail percentiles are re-read from as a series ages. Adding a bucket is O(series);
    reading the percentiles O(series x bins)."""

    def __init__(self, counts: np.ndarray):
        self.counts = counts  # (N, bins + 1): the last column holds |u| beyond the last edge

    @classmethod
    def from_residuals(cls, u: np.ndarray) -> "TailHistory":
        """From an (N, n) block of residuals (NaN = none), e.g. the warm-up's."""
        n_series = u.shape[0]
        rows, cols = np.nonzero(np.isfinite(u))
        flat = rows * HIST_EDGES.size + _bin(np.abs(u[rows, cols]))
        counts = np.bincount(flat, minlength=n_series * HIST_EDGES.size).astype(float)
        return cls(counts.reshape(n_series, HIST_EDGES.size))

    def add(self, rows: np.ndarray, u: np.ndarray) -> None:
        """One residual ``u`` for each series where ``rows`` (bool) and u is finite."""
        ok = rows & np.isfinite(u)
        if ok.any():
            idx = np.flatnonzero(ok)
            self.counts[idx, _bin(np.abs(u[idx]))] += 1.0  # one bucket per series: no repeats

    def quantiles(self) -> np.ndarray:
        """As ``tail_quantiles`` (NaN rows below ``MIN_TAIL_SAMPLE``), read off the histogram:
        the k-th smallest |u| is placed inside its bin by its rank there (geometrically)."""
        cum = np.cumsum(self.counts, axis=1)
        m = cum[:, -1]
        hi = np.clip(1.0 - TAIL_BEYOND / np.maximum(m, 1.0), TAIL_PROBS[1], TAIL_PROBS[2])
        # every row's cumulative counts lifted above the previous row's: one sorted array,
        # where one binary search per row finds the bin holding a rank
        lift = np.arange(m.size) * (float(m.max(initial=0.0)) + 1.0)
        flat = (cum + lift[:, None]).ravel()
        with np.errstate(invalid="ignore", divide="ignore"):
            q = np.stack([_hist_quantile(flat, lift, self.counts, m, np.full(m.shape, TAIL_PROBS[0])),
                          _hist_quantile(flat, lift, self.counts, m, hi), hi], axis=1)
        q[m < MIN_TAIL_SAMPLE] = np.nan
        return q


def refresh_every(per_day: int) -> int:
    """Buckets between two readings of a series' tail: a day of hours; a week of days (the
    daily tail moves slowly, and a reading costs O(series x bins))."""
    return per_day if per_day > 1 else 7


_HIST_MID = np.sqrt(HIST_EDGES * np.append(HIST_EDGES[1:], HIST_EDGES[-1] * HIST_STEP))  # geometric bin middles
_HIST_MID[0] = HIST_EDGES[1] / 2.0


def _bin(a: np.ndarray) -> np.ndarray:
    return np.searchsorted(HIST_EDGES, a, side="right") - 1


def _hist_quantile(flat: np.ndarray, lift: np.ndarray, counts: np.ndarray, m: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Linear interpolation between the order statistics around rank p (m - 1), as numpy's
    default; each placed inside its bin by its rank there (geometrically; linearly in bin 0)."""
    k = p * (m - 1)
    lo = np.floor(k)
    a = _hist_order(flat, lift, counts, lo)
    b = _hist_order(flat, lift, counts, np.minimum(lo + 1, m - 1))
    return a + (k - lo) * (b - a)


def _hist_order(flat: np.ndarray, lift: np.ndarray, counts: np.ndarray, k: np.ndarray) -> np.ndarray:
    """The k-th smallest value (0-based) of each row's histogram (``flat``: the lifted
    cumulative counts of all rows, see ``TailHistory.quantiles``)."""
    n_bins = counts.shape[1]
    rows = np.arange(counts.shape[0])
    pos = np.minimum(np.searchsorted(flat, k + lift, side="right"), flat.size - 1)
    b = np.clip(pos - rows * n_bins, 0, n_bins - 1)  # the bin holding rank k
    before = np.where(b > 0, flat[np.maximum(pos - 1, 0)] - lift, 0.0)
    frac = (k - before + 0.5) / counts[rows, b]
    lo = HIST_EDGES[b]
    hi = np.append(HIST_EDGES[1:], HIST_EDGES[-1] * HIST_STEP)[b]
    return np.where(b == 0, hi * frac, lo * (hi / np.where(lo > 0, lo, 1.0)) ** frac)


def tail_factor(q: np.ndarray, threshold: float) -> np.ndarray:
    """Heavy-tail factor per row from ``tail_quantiles`` for a two-sided spike threshold
    (in Gaussian sd): exponential extrapolation of the tail to the threshold's probability,
    over the same extrapolation of a Gaussian tail, in [1, MAX_TAIL]."""
    if not math.isfinite(threshold):
        return np.ones(q.shape[0])
    # an exponential tail gains the same |residual| per halving of the tail probability:
    # (q_hi - q75) over the log2(25 % / (1 - p_hi)) halvings between them, then
    # log2((1 - p_hi) / p) more
    lo = 1.0 - TAIL_PROBS[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        hi = 1.0 - q[:, 2]
        out = np.log2(hi / (2.0 * _norm_sf(threshold))) / np.log2(lo / hi)
        data = q[:, 1] + np.maximum(q[:, 1] - q[:, 0], 0.0) * out
        g_hi = _norm_isf(hi / 2.0)
        gauss = g_hi + (g_hi - GAUSS_Q[0]) * out
        f = data / gauss
    return np.where(np.isfinite(f), np.clip(f, 1.0, MAX_TAIL), 1.0)


def gpd_fit(counts: np.ndarray) -> tuple[np.ndarray, ...]:
    """Generalized Pareto tail of each row's |residual| histogram: the excesses over the
    edge ``u0`` below which ``1 - GPD_EXCESS`` of the residuals lie (k of them, a fraction
    ``zeta``), shape xi by probability-weighted moments (Hosking & Wallis 1987; residuals
    of one bin tied at its geometric middle) shrunk toward ``GPD_XI_PRIOR`` with the weight
    of ``GPD_PRIOR_K`` excesses, scale from the mean excess given that shape. Returns
    (u0, zeta, xi, sigma, k, xi_hat); xi_hat is the unshrunk estimate (NaN below 2 excesses)."""
    n_series, n_bins = counts.shape
    rows = np.arange(n_series)
    m = counts.sum(axis=1)
    above = np.cumsum(counts[:, ::-1], axis=1)[:, ::-1]  # residuals in bins >= b
    # the lowest bin edge with at most GPD_EXCESS of the residuals beyond it
    b0 = np.argmax(above <= np.maximum(GPD_EXCESS * m, 1.0)[:, None], axis=1)
    u0 = HIST_EDGES[b0]
    k = above[rows, b0]
    c = np.where(np.arange(n_bins)[None, :] >= b0[:, None], counts, 0.0)
    y = np.maximum(_HIST_MID[None, :] - u0[:, None], 0.0)
    kk = np.maximum(k, 1.0)
    below = np.cumsum(c, axis=1) - c  # excesses in lower bins: the ranks of a bin's ties
    # sum over a bin's ranks i of 1 - (i - 0.35) / k, the plotting position's complement
    w = c * (1.0 + 0.35 / kk[:, None]) - (c * below + c * (c + 1.0) / 2.0) / kk[:, None]
    a0 = (c * y).sum(axis=1) / kk
    a1 = (w * y).sum(axis=1) / kk
    with np.errstate(invalid="ignore", divide="ignore"):
        xi_hat = np.where(k >= 2, np.clip(2.0 - a0 / (a0 - 2.0 * a1), -0.5, 0.9), np.nan)
    xi = (np.nan_to_num(xi_hat, nan=0.0) * np.where(k >= 2, k, 0.0) + GPD_PRIOR_K * GPD_XI_PRIOR) / (
        np.where(k >= 2, k, 0.0) + GPD_PRIOR_K)
    sigma = a0 * (1.0 - xi)  # a GPD's mean excess is sigma / (1 - xi)
    with np.errstate(invalid="ignore", divide="ignore"):
        zeta = k / m
    return u0, zeta, xi, sigma, k, xi_hat


def gpd_quantile(counts: np.ndarray, rate: float) -> np.ndarray:
    """Per row of ``TailHistory.counts``: the |residual| exceeded with probability ``rate``
    under the row's GPD tail (``gpd_fit``); the empirical edge u0 where ``rate`` is not
    beyond it. NaN below ``MIN_TAIL_SAMPLE`` residuals."""
    u0, zeta, xi, sigma, _, _ = gpd_fit(counts)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        steps = np.maximum(np.log(zeta / rate), 0.0)  # log of the extrapolation
        grow = np.where(np.abs(xi) > 1e-9, np.expm1(xi * steps) / xi, steps)
        q = u0 + sigma * grow
    return np.where(counts.sum(axis=1) >= MIN_TAIL_SAMPLE, q, np.nan)


def gpd_rate(counts: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Per row: P(|residual| > x) under the row's GPD tail (the empirical fraction where x
    is below the tail's edge u0, from the histogram); NaN below ``MIN_TAIL_SAMPLE``."""
    u0, zeta, xi, sigma, _, _ = gpd_fit(counts)
    x = np.broadcast_to(np.asarray(x, dtype=float), u0.shape)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        y = np.maximum(x - u0, 0.0) / sigma
        tail = np.where(np.abs(xi) > 1e-9, np.maximum(1.0 + xi * y, 0.0) ** (-1.0 / xi), np.exp(-y))
        beyond = counts[:, ::-1].cumsum(axis=1)[:, ::-1]  # residuals in bins >= b
        inside = beyond[np.arange(u0.size), np.clip(_bin(x), 0, counts.shape[1] - 1)] / counts.sum(axis=1)
        r = np.where(x >= u0, zeta * tail, inside)
    return np.where(counts.sum(axis=1) >= MIN_TAIL_SAMPLE, r, np.nan)


def variance_df(learnt: np.ndarray, warm: np.ndarray, lag: int) -> np.ndarray:
    """Residuals the variance rests on, in full-efficiency units: the ``warm`` warm-up
    buckets give ``warm - lag`` differences one cycle apart, counted at the MAD's
    efficiency; each normal bucket learnt since counts as one (``learnt`` includes the
    warm-up)."""
    return MAD_EFFICIENCY * np.maximum(warm - lag, 0) + np.maximum(learnt - warm, 0)


def predictive_factor(df: np.ndarray, threshold: float) -> np.ndarray:
    """Student-t(df) over Gaussian quantile at the threshold's one-sided probability: how
    much wider a band must be when its variance rests on only ``df`` residuals."""
    if not math.isfinite(threshold):
        return np.ones(np.shape(df))
    table = _t_table(round(float(threshold), 6))
    i = np.clip(np.nan_to_num(np.asarray(df, dtype=float), nan=1.0), 1, MAX_DF).astype(int)
    return table[i]


@functools.lru_cache(maxsize=16)
def _t_table(threshold: float) -> np.ndarray:
    # scipy.stats' t.isf(p, df) is -stdtrit(df, p); scipy.special spares a detect the import
    # of scipy.stats (0.4 s)
    from scipy.special import stdtrit

    p = _norm_sf(threshold)
    df = np.arange(MAX_DF + 1, dtype=float)
    df[0] = 1.0
    # (at a tail probability of 0, beyond ~38 sd, isf is +inf: stdtrit gives -inf there)
    f = np.where(p > 0, -stdtrit(df, p), np.inf) / threshold
    return np.maximum(f, 1.0)


def _norm_sf(x: float) -> float:
    return 0.5 * math.erfc(x / math.sqrt(2.0))


def _norm_isf(p: np.ndarray) -> np.ndarray:
    from scipy.special import ndtri

    return -ndtri(np.asarray(p, dtype=float))
