"""The Generalized Pareto tail of a series' |residuals| (tails.gpd_fit): what a band promises."""
from __future__ import annotations

import numpy as np

from monitor.detect.tails import TailHistory, gpd_fit, gpd_quantile, gpd_rate, tail_factor, tail_quantiles

T_HOURLY = 4.697  # the hourly spike threshold at medium
P_HOURLY = 5.28e-6  # its two-sided probability


def _counts(u: np.ndarray) -> np.ndarray:
    return TailHistory.from_residuals(u).counts


def _t2_rate(x: np.ndarray) -> np.ndarray:
    """P(|T| > x) for a Student-t with 2 degrees of freedom (exact)."""
    return 1.0 - x / np.sqrt(2.0 + x * x)


def test_the_shape_is_recovered_light_exponential_and_heavy():
    rng = np.random.default_rng(0)
    xi = {name: np.median(gpd_fit(_counts(gen((8, 20000))))[5]) for name, gen in {
        "normal": rng.standard_normal, "exponential": lambda size: rng.exponential(size=size),
        "pareto 0.5": lambda size: rng.pareto(2.0, size), "t2": lambda size: rng.standard_t(2, size)}.items()}
    assert xi["normal"] < -0.1
    assert abs(xi["exponential"]) < 0.1
    assert 0.4 < xi["pareto 0.5"] < 0.6 and 0.4 < xi["t2"] < 0.6


def test_a_student_t2_tail_is_exceeded_at_about_the_promised_rate():
    # 5000 hours (~7 months) of Student-t(2) residuals: the GPD quantile at the hourly
    # threshold's probability is exceeded at about that rate (within 4x, over 12 series;
    # one series' estimate spreads 10x: three decades of extrapolation); the exponential
    # extrapolation (tail_factor, what the judge reads) promises the same rate and is
    # exceeded ~350 times more often
    u = np.random.default_rng(1).standard_t(2, (12, 5000))
    q = gpd_quantile(_counts(u), P_HOURLY)
    ratio = np.median(_t2_rate(q)) / P_HOURLY
    assert 0.25 < ratio < 4.0
    exp_band = T_HOURLY * tail_factor(tail_quantiles(u), T_HOURLY)
    assert np.median(_t2_rate(exp_band)) > 100 * P_HOURLY


def test_rate_and_quantile_are_inverse():
    counts = _counts(np.random.default_rng(2).standard_t(3, (5, 3000)))
    for rate in (1e-2, 1e-4, 1e-6):
        assert np.allclose(gpd_rate(counts, gpd_quantile(counts, rate)), rate, rtol=1e-6)


def test_few_residuals_give_a_wider_tail_that_narrows_as_it_is_learnt():
    # Gaussian residuals: with 60 of them the shape leans on the heavy prior (xi 0.25) and
    # the band at a rare rate is wide; with 5000 the light tail is learnt
    rng = np.random.default_rng(3)
    young = np.median(gpd_quantile(_counts(rng.standard_normal((40, 60))), 1e-5))
    old = np.median(gpd_quantile(_counts(rng.standard_normal((40, 5000))), 1e-5))
    assert young > 1.3 * old and old < 4.6  # 4.42 is the exact Gaussian quantile
    assert np.isnan(gpd_quantile(_counts(rng.standard_normal((1, 30))), 1e-5)[0])  # too few
