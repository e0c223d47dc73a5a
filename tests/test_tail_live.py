"""The heavy-tail factor re-read from a series' own residuals as it ages (tails.TailHistory)."""
from __future__ import annotations

import numpy as np
import pytest

from monitor.detect.series import detect_series
from monitor.detect.tails import TailHistory, tail_quantiles

HOURLY = dict(period=(24, 168), direction="both", accept_after=72)


def test_the_histogram_reads_the_same_percentiles_as_the_sorted_residuals():
    rng = np.random.default_rng(0)
    u = rng.standard_t(3, (5, 900))
    u[1, :860] = np.nan  # 40 left: just enough
    u[2, :870] = np.nan  # 30: too few
    u[3] = np.abs(rng.standard_normal(900)) * 1e-3  # tiny scale
    exact, hist = tail_quantiles(u), TailHistory.from_residuals(u).quantiles()
    assert np.isnan(hist[2]).all() and np.isnan(exact[2]).all()
    ok = [0, 1, 3, 4]
    assert hist[ok, 2] == pytest.approx(exact[ok, 2])
    assert hist[ok, :2] == pytest.approx(exact[ok, :2], rel=0.05)


def test_adding_residuals_moves_the_upper_percentile_out():
    h = TailHistory.from_residuals(np.random.default_rng(1).standard_normal((1, 100)))
    before = h.quantiles()[0]
    for _ in range(8):  # eight surprises of 20 sd among ~100 residuals
        h.add(np.array([True]), np.array([20.0]))
    after = h.quantiles()[0]
    assert after[1] > 2 * before[1] and after[0] == pytest.approx(before[0], rel=0.2)
    h.add(np.array([False]), np.array([50.0]))  # a row not added to stays as it was
    h.add(np.array([True]), np.array([np.nan]))
    assert h.counts.sum() == 108


def _bursty(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100 + 30 * np.sin(2 * np.pi * np.arange(n) / 24) + 5 * rng.standard_t(2, n)


def test_a_young_heavy_tailed_series_learns_its_tail_and_pages_less():
    # Student-t(2) noise, judged after a 3-day warm-up whose 48 differences show only the
    # 95th percentile: the band used to keep that tail, and such series paged about once
    # every four days in their second week (17 false pages in 12 seeds); the real spike
    # (60 core sd) still pages in every seed
    n = 24 * 12
    late, hit = 0, 0
    for seed in range(12):
        x = _bursty(seed, n)
        x[-3] += 300
        starts = [s.start for s in detect_series(x, **HOURLY).segments]
        hit += (n - 3) in starts
        late += sum(1 for s in starts if s >= 6 * 24 and s != n - 3)
    assert hit == 12
    assert late <= 8


def test_a_long_anomaly_counts_once_and_does_not_make_the_series_deaf():
    # 20 hours of +30 sd on day 6, then a 9 sd spike three days later: the run enters the
    # tail as one surprise (declustered), not as 20 residuals that would lift its 99th
    # percentile to 30 sd
    n = 24 * 12
    for seed in range(4):
        rng = np.random.default_rng(100 + seed)
        x = 100 + 30 * np.sin(2 * np.pi * np.arange(n) / 24) + 5 * rng.standard_normal(n)
        x[24 * 6: 24 * 6 + 20] += 150
        x[-3] += 45
        starts = [s.start for s in detect_series(x, **HOURLY).segments]
        assert starts[0] == 24 * 6 and starts[-1] == n - 3
