"""The noise model on series that are not Gaussian counts: heavy tails, bursts, prices,
mostly-constant series, a young baseline, and anomalies that flicker."""
from __future__ import annotations

import numpy as np
import pytest

from monitor.detect.series import detect_series
from monitor.detect.tails import MAX_TAIL, predictive_factor, tail_factor, tail_quantiles

HOURLY = dict(period=(24, 168), direction="both", accept_after=72)
T_HOURLY = 4.697  # the hourly spike threshold at medium


def _factor(u: np.ndarray) -> float:
    return float(tail_factor(tail_quantiles(u[None, :]), T_HOURLY)[0])


def _core(x: np.ndarray) -> np.ndarray:
    """Residuals in MAD-sd units, as the warm-up standardises them."""
    d = x - np.median(x)
    return d / (1.4826 * np.median(np.abs(d)))


# ----------------------------------------------------------------------------- tails.py
def test_gaussian_residuals_keep_the_gaussian_threshold():
    rng = np.random.default_rng(0)
    f = [_factor(_core(rng.standard_normal(336))) for _ in range(50)]
    assert 1.0 <= np.median(f) < 1.1


def test_heavier_tails_get_wider_bands_in_order():
    rng = np.random.default_rng(1)
    med = {name: np.median([_factor(_core(gen(504))) for _ in range(30)]) for name, gen in {
        "normal": rng.standard_normal, "laplace": lambda n: rng.laplace(size=n),
        "t2": lambda n: rng.standard_t(2, n)}.items()}
    assert med["normal"] < 1.15 < 1.5 < med["laplace"] < med["t2"] <= MAX_TAIL


def test_too_few_residuals_are_taken_as_gaussian():
    u = np.random.default_rng(2).standard_t(1, 30)  # Cauchy, but only 30 of them
    assert _factor(u) == 1.0


def test_bands_start_wide_and_narrow_as_the_baseline_learns():
    f = predictive_factor(np.array([10, 48, 168, 1000, 100000]), T_HOURLY)
    assert np.all(np.diff(f) < 0) and f[0] > 1.5 and f[1] > 1.1 and f[-1] == pytest.approx(1.0, abs=0.01)
    assert np.all(predictive_factor(np.array([10, 1000]), np.inf) == 1.0)  # no spikes, no band


# ----------------------------------------------------------------------------- on series
def test_a_price_is_not_a_count_small_values_are_not_deaf():
    # hourly prices around 0.10 with noise 0.005: a Poisson floor (sd sqrt(0.1) = 0.32) in
    # these units hid a 10 sd jump
    rng = np.random.default_rng(3)
    n = 24 * 35
    p = 0.1 + 0.005 * rng.standard_normal(n)
    p[-6:] += 0.05
    det = detect_series(p, **HOURLY)
    assert [s.start for s in det.segments] == [n - 6]


def test_small_counts_keep_their_poisson_floor():
    # whole numbers: 0, 1, 2 ... an hour; a 4 is no page, 30 is
    rng = np.random.default_rng(4)
    x = rng.poisson(1.0, 24 * 35).astype(float)
    x[-30] = 4.0
    x[-10] = 30.0
    det = detect_series(x, **HOURLY)
    assert [s.start for s in det.segments] == [x.size - 10]


def test_a_mostly_quiet_bursty_series_pages_on_an_unusual_burst_only():
    # zeros with ordinary bursts in ~10 % of the hours (disk writes, rare events): the MAD
    # is 0, the clipped variance used to shrink between bursts, and every burst paged
    rng = np.random.default_rng(5)
    n = 24 * 35
    x = np.where(rng.random(n) < 0.1, rng.gamma(2.0, 25.0, n), 0.0).round()
    assert detect_series(x, **HOURLY).segments == []
    x[-5] = 100 * x.max()
    assert [s.start for s in detect_series(x, **HOURLY).segments] == [n - 5]


def test_a_new_metric_starts_with_wide_bands_that_narrow_as_it_learns():
    # live, as an hourly header sees it: on day 3 (24 differences one day apart learnt)
    # the band is wider than after 5 weeks, on average over seeds (one seed is noise)
    early, late = [], []
    for seed in range(8):
        x = 100.0 + np.random.default_rng(seed).standard_normal(840)
        for n, out in ((50, early), (840, late)):
            det = detect_series(x[:n], **HOURLY)
            out.append(det.upper[-1] - det.expected[-1])
    assert np.mean(early) > 1.4 * np.mean(late)


def test_a_large_change_pages_from_the_first_days():
    rng = np.random.default_rng(6)
    x = 100.0 + rng.standard_normal(50)
    x[-1] += 30.0
    assert [s.start for s in detect_series(x, **HOURLY).segments] == [49]


def _flicker(n: int, at: int, period):
    rng = np.random.default_rng(7)
    x = rng.poisson(400.0, n).astype(float)
    for k in (0, 2, 4):  # up, back for an hour, up again
        x[at + k] += 200.0
    return detect_series(x, period=period, direction="both", accept_after=72)


def test_an_hourly_anomaly_that_dips_back_for_an_hour_is_one_segment():
    det = _flicker(24 * 30, 24 * 28, (24, 168))
    assert [(s.start, s.end) for s in det.segments] == [(24 * 28, 24 * 28 + 5)]


def test_daily_segments_are_not_held_open():
    det = _flicker(120, 100, 7)  # a normal day between two anomalous ones is news
    assert [(s.start, s.end) for s in det.segments] == [(100, 101), (102, 103), (104, 105)]


def test_a_sparse_count_slice_that_starts_late_keeps_its_poisson_floor():
    # a slice above its volume floor (40) only now and then, and never in its warm-up: what
    # it learns is censored at 40, so only the Poisson floor keeps 47 against 40 from paging
    rng = np.random.default_rng(8)
    x = rng.poisson(33.0, 120).astype(float)
    x[:30] = np.minimum(x[:30], 39.0)
    det = detect_series(x, period=7, direction="both", min_volume=40.0, accept_after=14)
    assert det.segments == []
