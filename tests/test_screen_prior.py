"""The screen's smallest p per pair (``screen._min_p``) computes each pair's prediction once for
the shortest window and slices it for the longer ones; the same p-values, bit for bit, as the
earlier version that recomputed it per window (kept here as the reference)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.special import betainc

from monitor.detect import screen
from monitor.detect.screen import HISTORY, MIN_HISTORY, PRIOR_EVENTS, WINDOWS  # the reference reads them


def _reference_min_p(c: np.ndarray, v: np.ndarray, direction: str, *, rows: np.ndarray | None = None,
           cols: np.ndarray | None = None, columns: tuple[np.ndarray, np.ndarray] | None = None,
           tau2: float = 1.0) -> np.ndarray:
    """Smallest p-value per pair over buckets and windows; c and v are cumulative sums with
    a leading zero column (c[:, t + 1] = counts up to bucket t). `rows` (sorted) and `cols`
    number each pair's row and column value, `columns` the column values' cumulative
    sums (see _column_sums); without them there is no pooled rate (the pair's own history
    only, with one prior event)."""
    n_rows, width = c.shape
    best = np.ones(n_rows)
    pooled = columns is not None
    if pooled:
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        group = np.cumsum(np.r_[True, rows[1:] != rows[:-1]]) - 1
    for length in WINDOWS:
        # windows [mid, end) with end - length = mid >= MIN_HISTORY, history [lo, mid)
        first = MIN_HISTORY + length
        if first >= width:
            continue
        ends = slice(first, width)
        mids = slice(MIN_HISTORY, width - length)
        x = c[:, ends] - c[:, mids]
        vw = v[:, ends] - v[:, mids]
        lo = np.maximum(np.arange(MIN_HISTORY, width - length) - HISTORY, 0)
        y = c[:, mids] - c[:, lo]
        vh = v[:, mids] - v[:, lo]
        with np.errstate(divide="ignore", invalid="ignore"):
            if pooled:
                cn, cd = columns
                rate = np.nan_to_num((cn[:, mids] - cn[:, lo]) / (cd[:, mids] - cd[:, lo]))[cols]
                e = vh * rate  # events the pair's history would hold at its column's rate
                yo = np.add.reduceat(y, starts, axis=0)[group] - y
                eo = np.add.reduceat(e, starts, axis=0)[group] - e
                r0 = rate * (yo + PRIOR_EVENTS) / (eo + PRIOR_EVENTS)
                a0 = 1.0 / (1.0 / (yo + PRIOR_EVENTS) + tau2)
                del e, eo
                shape = a0 + y
                scale = np.where(r0 > 0, a0 / r0, 0.0) + vh  # prior volume + own volume
                del yo, r0, a0
            else:
                shape, scale = y + 1.0, vh
            q = vw / (vw + scale)
            mean = vw * shape / scale
            # a loose normal pre-screen (negative binomial variance): the exact tail is
            # computed only where it can matter
            z = (x - mean) / np.sqrt(mean * (1 + vw / scale))
        del mean
        tails = []
        if direction in ("up", "both"):
            tails.append(((z > 3.0) & (x > 0), lambda xs, ks, qs: betainc(xs, ks, qs)))  # P(NB >= x)
        if direction in ("down", "both"):
            tails.append((z < -3.0, lambda xs, ks, qs: betainc(ks, xs + 1, 1 - qs)))  # P(NB <= x)
        for sel, tail in tails:
            sel &= (scale > 0) & (vw > 0) & (shape > 0)
            r, k = np.nonzero(sel)
            if len(r):
                np.minimum.at(best, r, tail(x[r, k], shape[r, k], q[r, k]))
    return best


def _cumulative(a: np.ndarray) -> np.ndarray:
    return np.hstack([np.zeros((len(a), 1)), a.cumsum(axis=1)])


@pytest.mark.parametrize("direction", ["up", "down", "both"])
@pytest.mark.parametrize("n", [MIN_HISTORY + 1, MIN_HISTORY + 2, MIN_HISTORY + 4, 60, 140])
def test_the_same_p_values_as_recomputing_the_prediction_per_window(direction, n):
    rng = np.random.default_rng(n)
    sellers, width = 400, 3
    volume = rng.uniform(0, 40, (sellers * width, n)) * (rng.random((sellers * width, n)) > 0.1)
    counts = rng.poisson(volume * rng.gamma(2.0, 0.01, (sellers * width, 1))).astype(float)
    counts[7, n - 3:] += 9  # a burst up, and one down
    counts[8, n - 5:] = 0
    c, v = _cumulative(counts), _cumulative(volume)
    keys = np.arange(sellers * width)
    cn = _cumulative(counts.reshape(sellers, width, n).sum(axis=0))
    cd = _cumulative(volume.reshape(sellers, width, n).sum(axis=0))
    pooled = dict(rows=keys // width, cols=keys % width, columns=(cn, cd), tau2=0.05)
    got, want = screen._min_p(c, v, direction, **pooled), _reference_min_p(c, v, direction, **pooled)
    assert np.array_equal(got, want)
    assert np.array_equal(screen._min_p(c, v, direction), _reference_min_p(c, v, direction))
    if n > 40 and direction != "down":
        assert (got < 1).sum() > 10  # tails were computed, not all skipped
