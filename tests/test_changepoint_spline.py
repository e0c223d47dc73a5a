"""The smooth rival's cubic splines (``smooth_knots``, an option): an S-shaped rise that
no single cubic follows is not cut into lines."""
from __future__ import annotations

import numpy as np

from monitor.detect.changepoint import find_change_points

from ar_noise import ar1


def _logistic(seed: int) -> np.ndarray:
    u = np.linspace(0.0, 1.0, 400)
    return 100.0 / (1.0 + np.exp(-(u - 0.5) / 0.1)) + ar1(900 + seed, 400, 0.3)


def test_a_logistic_rise_is_one_smooth_trend_with_splines():
    assert all(find_change_points(_logistic(seed), smooth_knots=4) == [] for seed in range(6))
    # the polynomials alone (the default) cut it
    assert sum(bool(find_change_points(_logistic(seed))) for seed in range(6)) >= 5


def test_a_level_shift_beats_the_splines():
    for seed in range(4):
        x = 0.02 * np.arange(300) + ar1(950 + seed, 300, 0.3)
        x[180:] += 6.0
        found = find_change_points(x, smooth_knots=4)
        assert any(abs(c - 180) <= 2 for c in found), (seed, found)
