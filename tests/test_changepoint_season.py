"""Seasonality in ``find_change_points`` is found only when it is significant
(``detect_period``'s test over the lags searched), not whenever one lag of 20-odd
passes a fixed autocorrelation bound by chance."""
from __future__ import annotations

import numpy as np

from monitor.detect.changepoint import detect_period, find_change_points


def test_white_noise_rarely_has_a_period():
    # 60 points: the best of 13 lags passes 0.3 by chance in ~1 series of 5
    new = sum(detect_period(np.random.default_rng(s).normal(size=60)) is not None for s in range(200))
    old = sum(detect_period(np.random.default_rng(s).normal(size=60), alpha=None) is not None for s in range(200))
    assert new <= 8, new  # ~alpha = 5 % at most
    assert old >= 20, old  # the fixed bound alone


def test_a_clear_cycle_is_still_found():
    for seed in range(10):
        rng = np.random.default_rng(seed)
        shape = rng.normal(size=12)
        shape = (shape - shape.mean()) / shape.std()
        x = rng.normal(size=120) + 2.0 * shape[np.arange(120) % 12]
        assert detect_period(x) == 12, seed


def test_a_false_cycle_does_not_cut_a_single_shift():
    # A hypothesis example: the fixed bound read a period of 16 into this white noise,
    # STL took it out, and the residue gave [16, 20, 30, 68] for one 5-sd shift at 30.
    x = np.random.default_rng(6904).normal(0.0, 1.0, 100)
    x[30:] += 5.0
    assert detect_period(x, alpha=None) == 16
    assert find_change_points(x) == [30]
