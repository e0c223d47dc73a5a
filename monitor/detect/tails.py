"""How many core sd make a page: heavy tails, and a baseline that has seen little.

The noise model (``noise.py``) estimates the *core* scale of a series robustly (MADs, Huber):
right for where most buckets fall, silent on how often real series jump far beyond it.
The spike threshold promises a tail probability p (4 sd for daily buckets, 4.69 sd for
hourly ones: ``per_day_threshold``), i.e. about one false spike per series every ~85
years at medium. Two things break that promise on real series, and each gives a factor on
the band (the score is divided by it, so a score of 4 keeps meaning "p"):

- *Heavy tails*: tweet volumes, CPU and network series burst to 10-100 core sd every few
  days. The tail of |residual| beyond the warm-up's 95th percentile is taken as
  exponential, its scale read off the 75th and 95th percentiles (robust: a few anomalies
  in the warm-up move neither much), and extrapolated to p; the factor is that
  extrapolation over the same one for Gaussian residuals (never below 1: a light tail is
  not made more sensitive than the Gaussian promise). Conservative by design: on 336
  residuals it gives 1.05 +- 0.07 for Gaussian noise, 1.8 for Laplace (exact: 2.7) and
  Student-t(3) noise (exact: 17.5); the percentiles 10 halvings of probability further
  out would be exact and far noisier. Needs ``MIN_TAIL_SAMPLE`` residuals; with fewer the
  tail is taken as Gaussian.
- *Few observations* (cold start): a variance estimated from df residuals predicts the next
  one with Student-t tails (df), not Gaussian ones; df grows with the buckets the baseline
  has learnt from (``variance_df``), so bands start wide and narrow as it learns, and a
  new metric pages only on a large change in its first days.
"""
from __future__ import annotations

import functools
import math

import numpy as np

MIN_TAIL_SAMPLE = 40  # residuals needed to see a tail at all (the 95th percentile of 40 is the 2nd largest)
TAIL_PROBS = (0.75, 0.95)
MAX_TAIL = 25.0  # bound on the heavy-tail factor: past it, the tail estimate is noise
MAX_DF = 4096  # beyond this the Student-t factor is 1 to 3 decimals
# Asymptotic efficiency of the MAD as a scale estimate for normal data (vs the sd): the
# warm-up's MAD of n differences is as precise as a variance from 0.37 n residuals.
MAD_EFFICIENCY = 0.368
# |Z| for a standard normal Z: 75th and 95th percentiles
GAUSS_Q = (1.1503493803760083, 1.959963984540054)


def tail_quantiles(u: np.ndarray) -> np.ndarray:
    """(N, 2) 75th and 95th percentiles of |u| per row (u: residuals in core sd, NaN =
    missing); NaN where a row has fewer than ``MIN_TAIL_SAMPLE``."""
    a = np.abs(u)
    enough = np.sum(np.isfinite(a), axis=1) >= MIN_TAIL_SAMPLE
    q = np.full((u.shape[0], 2), np.nan)
    if enough.any():
        q[enough] = np.nanquantile(a[enough], TAIL_PROBS, axis=1).T
    return q


def tail_factor(q: np.ndarray, threshold: float) -> np.ndarray:
    """Heavy-tail factor per row from ``tail_quantiles`` for a two-sided spike threshold
    (in Gaussian sd): exponential extrapolation of the tail to the threshold's probability,
    over the same extrapolation of a Gaussian tail, in [1, MAX_TAIL]."""
    if not math.isfinite(threshold):
        return np.ones(q.shape[0])
    # an exponential tail gains the same |residual| per halving of the tail probability:
    # (q95 - q75) over the log2(25 % / 5 %) halvings between them, then log2(5 % / p) more
    lo, hi = 1.0 - TAIL_PROBS[0], 1.0 - TAIL_PROBS[1]
    out = math.log2(hi / (2.0 * _norm_sf(threshold))) / math.log2(lo / hi)
    data = q[:, 1] + np.maximum(q[:, 1] - q[:, 0], 0.0) * out
    gauss = GAUSS_Q[1] + (GAUSS_Q[1] - GAUSS_Q[0]) * out
    f = data / gauss
    return np.where(np.isfinite(f), np.clip(f, 1.0, MAX_TAIL), 1.0)


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
    from scipy.stats import t

    p = _norm_sf(threshold)
    df = np.arange(MAX_DF + 1, dtype=float)
    df[0] = 1.0
    f = t.isf(p, df) / threshold
    return np.maximum(f, 1.0)


def _norm_sf(x: float) -> float:
    return 0.5 * math.erfc(x / math.sqrt(2.0))
