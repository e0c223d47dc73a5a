"""Multiplicative smooth growth in ``find_change_points`` (``LOG_SMOOTH``): no change is
reported where the likelier scale, log(x), sees none."""
from __future__ import annotations

import numpy as np

from monitor.detect.changepoint import find_change_points

from ar_noise import ar1


def _exponential(seed: int, n: int = 200) -> np.ndarray:
    # 4 % growth a step for 200 steps (~3000-fold), noise 3 % of the level, AR(1) 0.3
    return 50.0 * np.exp(0.04 * np.arange(n) + 0.03 * ar1(seed, n, 0.3))


def test_exponential_growth_without_change_is_not_cut():
    new = [find_change_points(_exponential(seed)) for seed in range(10)]
    assert sum(bool(c) for c in new) <= 1, new
    # the same series on the values' scale alone (session 9's answer) are cut into lines
    old = [find_change_points(_exponential(seed), log_smooth=False) for seed in range(10)]
    assert sum(bool(c) for c in old) >= 7, old


def test_level_shift_in_a_positive_series_is_still_found():
    # a Nile-like series: positive, the level drops by 4 sds at 60 of 150
    for seed in range(6):
        x = 1000.0 + 150.0 * ar1(seed + 100, 150, 0.3)
        x[60:] -= 600.0
        found = find_change_points(x)
        assert any(abs(c - 60) <= 2 for c in found), (seed, found)
        assert len(found) <= 2, (seed, found)


def test_series_with_values_at_or_below_zero_are_untouched():
    # log(x) does not exist there: the rule must not act, whatever the shape
    for seed in range(4):
        x = _exponential(seed) - 100.0
        assert find_change_points(x) == find_change_points(x, log_smooth=False)
