"""Sequence novelty: how unlike the last few buckets are to every earlier stretch of the series.

The residual band judges one bucket against its expected value; the NAB leaders (HTM, KNN CAD,
ARTime) instead ask whether the recent *pattern* has been seen before. Here, per series and
bucket t (causal: only buckets <= t):

- values are forward-filled and, for a non-negative series (counts, levels), log1p'd so that a
  busy hour's noise does not dominate the distance;
- d[t] = distance of the last ``window`` values to the nearest earlier stretch of the same
  length that ends at least ``window`` buckets before t (no overlap, so a stretch cannot
  match itself), looking back at most ``max_history`` buckets (bounded cost, and old patterns
  fade as in HTM);
- HTM's anomaly likelihood: the tail probability of log d[t] against the mean and sd of all
  earlier log distances, under a normal model.

``novel`` flags buckets whose tail probability is below ``alpha`` (1e-3 per bucket: at most
about 0.7 flagged hours per month). The normal model of log distance is conservative: no flag
at all on 20 clean hourly series of 8 weeks (tests/test_novelty.py), 11 flags outside labelled
windows on NAB's 37 dev series (0.2 per series-month). Alone it finds 24 of NAB dev's 77
windows, too few to page on its own; beside the residual band it adds windows the band misses
(a burst's shape, a swing inside the band), so the default detector pages on both.
"""
from __future__ import annotations

import numpy as np
from scipy.special import ndtr

WINDOW = 6  # buckets (hours): a burst's rise and first decay
ALPHA = 1e-3  # per-bucket tail probability that flags a bucket
MIN_HISTORY = 72  # earlier stretches before a distance counts (three days of hours)
MIN_SCORES = 48  # earlier distances before the likelihood is trusted
MAX_HISTORY = 8 * 168  # eight weeks of hours: cost O(n * MAX_HISTORY * WINDOW) per series
_BLOCK = 1 << 22  # distance cells per block (memory bound)


def _prepare(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward-filled, transformed values and a mask of buckets at or after the first
    observed one."""
    n_rows, n = obs.shape
    finite = np.isfinite(obs)
    idx = np.where(finite, np.arange(n)[None, :], -1)
    np.maximum.accumulate(idx, axis=1, out=idx)
    seen = idx >= 0
    y = np.take_along_axis(obs, np.maximum(idx, 0), axis=1)
    y = np.where(seen, y, 0.0)
    nonneg = np.all(np.where(finite, obs, 0.0) >= 0, axis=1)
    y = np.where(nonneg[:, None], np.log1p(np.maximum(y, 0.0)), y)
    return y, seen


def nearest_distance(obs: np.ndarray, window: int = WINDOW, max_history: int = MAX_HISTORY) -> np.ndarray:
    """(rows, n) distance of each bucket's last ``window`` values to the nearest earlier,
    non-overlapping stretch; NaN until MIN_HISTORY stretches exist."""
    obs = np.atleast_2d(np.asarray(obs, dtype=float))
    n_rows, n = obs.shape
    d = np.full((n_rows, n), np.nan)
    if n < window + MIN_HISTORY + window:
        return d
    y, seen = _prepare(obs)
    V = np.lib.stride_tricks.sliding_window_view(y, window, axis=1)  # (rows, m, w): V[:, i] ends at i + w - 1
    ok = np.lib.stride_tricks.sliding_window_view(seen, window, axis=1).all(axis=2)  # (rows, m)
    m = V.shape[1]
    sq = (V * V).sum(axis=2)
    span = max_history + 1  # candidates j in [i - w - max_history, i - w]
    step = max(1, min(512, _BLOCK // (n_rows * (span + 512))))  # cells ~ rows * step * (step + span)
    first = window + MIN_HISTORY - 1  # the first query with MIN_HISTORY candidates
    for a in range(first, m, step):
        b = min(m, a + step)
        lo, hi = max(0, a - window - max_history), b - window  # candidate range of the block
        G = np.matmul(V[:, a:b], V[:, lo:hi].transpose(0, 2, 1))  # batched BLAS: 1.7x einsum
        D2 = sq[:, a:b, None] + sq[:, None, lo:hi] - 2.0 * G
        i = np.arange(a, b)[:, None]
        j = np.arange(lo, hi)[None, :]
        allowed = (j <= i - window) & (j >= i - window - max_history)
        allowed = allowed[None] & ok[:, None, lo:hi] & ok[:, a:b, None]
        D2 = np.where(allowed, D2, np.inf)
        best = D2.min(axis=2)
        d[:, a + window - 1:b + window - 1] = np.where(np.isfinite(best), np.sqrt(np.maximum(best, 0.0)), np.nan)
    return d


def tail_probability(d: np.ndarray) -> np.ndarray:
    """(rows, n) HTM-style likelihood: P(Z >= z) of log d[t] against the mean and sd of the
    earlier log distances; 1 where undefined."""
    d = np.atleast_2d(d)
    # a floor keeps exact repeats (d = 0) finite without making any later change infinite
    scale = np.nan_to_num(np.fmax.accumulate(d, axis=1))  # causal: the largest distance so far
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.log(d + 1e-6 * np.maximum(scale, 1e-12))
    ok = np.isfinite(s)
    z = np.where(ok, s, 0.0)
    c = np.cumsum(ok, axis=1)
    s1 = np.cumsum(z, axis=1)
    s2 = np.cumsum(z * z, axis=1)
    pad = lambda x: np.concatenate([np.zeros((x.shape[0], 1)), x[:, :-1]], axis=1)  # noqa: E731
    pc, p1, p2 = pad(c), pad(s1), pad(s2)  # strictly earlier scores
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = p1 / pc
        sd = np.sqrt(np.maximum(p2 / pc - mu * mu, 0.0))
        zz = (z - mu) / np.maximum(sd, 1e-9)
    p = 1.0 - ndtr(zz)
    return np.where(ok & (pc >= MIN_SCORES) & np.isfinite(p), p, 1.0)


def novel(obs: np.ndarray, window: int = WINDOW, alpha: float = ALPHA,
          max_history: int = MAX_HISTORY) -> np.ndarray:
    """(rows, n) bool: buckets whose recent pattern is unlike any earlier one at rate ``alpha``."""
    return tail_probability(nearest_distance(obs, window, max_history)) < alpha


def merge(obs: np.ndarray, expected: np.ndarray, score: np.ndarray, anomalous: np.ndarray,
          direction: np.ndarray, *, sides: str = "both", exclude: np.ndarray | None = None,
          flags: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The judge's (anomalous, direction) with novel buckets added: only judged buckets
    (finite score: past the warm-up, not excluded) with no flagged bucket in their stretch,
    pointing the way the value left its expected value, on the sides the metric pages on.
    ``flags``: ``novel(obs)`` if known."""
    flags = novel(obs) if flags is None else flags
    sign = np.where(obs >= expected, 1, -1).astype(direction.dtype)
    # a stretch that holds a bucket the band flagged is explained by it: its novelty echoes
    # that anomaly for WINDOW buckets (a re-page, or a dip hour splitting one segment in two)
    c = np.cumsum(anomalous, axis=-1)
    lag = np.concatenate([np.zeros_like(c[..., :WINDOW]), c[..., :-WINDOW]], axis=-1)[..., :c.shape[-1]]
    echo = (c - lag) > 0
    keep = flags & np.isfinite(score) & ~echo
    if exclude is not None:
        keep &= ~exclude
    if sides == "up":
        keep &= sign > 0
    elif sides == "down":
        keep &= sign < 0
    return anomalous | keep, np.where(keep, sign, direction)
