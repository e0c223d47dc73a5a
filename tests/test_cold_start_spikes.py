"""An hourly series' first two days, live: before its daily cycle is seen twice the level
has no seasonal profile, so every hour's deviation from it carries the cycle's swing. The
spike band must cover that swing (no page from night and day alone), and still open for a
large change (x20 on day 2)."""
from __future__ import annotations

import numpy as np

from monitor.detect.series import detect_series

HOURLY = dict(period=(24, 168), direction="both", accept_after=72)
FIRST_DAYS = 48  # hours before the daily cycle is covered twice
SWING = 8.0  # night-to-day ratio, as nyc_taxi's


def _counts(seed: int, n: int = FIRST_DAYS) -> np.ndarray:
    """Hourly counts with a strong daily cycle (x8 from trough to peak, its peak hour
    drawn), hour-level over-dispersion and Poisson noise."""
    rng = np.random.default_rng(seed)
    h = np.arange(n)
    a = np.log(SWING) / 2.0
    mean = 300.0 * np.exp(a * np.cos(2 * np.pi * (h - rng.uniform(0, 24)) / 24) + 0.1 * rng.standard_normal(n))
    return rng.poisson(mean).astype(float)


def _pages(x: np.ndarray) -> list[tuple[int, str]]:
    """(hour, kind) of each page of the hourly replay: a segment open now that was not
    the hour before."""
    out, was_open = [], False
    for t in range(x.size):
        seg = detect_series(x[: t + 1], **HOURLY).open_segment
        if seg is not None and not was_open:
            out.append((t, seg.kind))
        was_open = seg is not None
    return out


def test_the_daily_swing_pages_no_spike_in_the_first_two_days():
    paged = {seed: p for seed in range(12) if (p := _pages(_counts(seed)))}
    assert paged == {}, paged


def test_a_x20_spike_on_day_two_pages():
    for seed in range(6):
        x = _counts(seed)
        at = 26 + 3 * seed  # hours 26..41: every part of the cycle over the seeds
        x[at] *= 20.0
        assert any(p == at for p, _ in _pages(x[: at + 3])), seed
