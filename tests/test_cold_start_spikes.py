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


def _paged_at(x, at: int, **settings) -> bool:
    return any(seg.start <= at and (seg.end is None or seg.end > at)
               for seg in detect_series(x[: at + 1], **settings).segments)


def test_a_flat_or_late_start_still_pages_a_large_change():
    """A warm-up without swing (an error counter at 0, a constant count, a slice that starts
    late, a zero rate) is not an unknown scale to be ignored: a large change pages."""
    rng = np.random.default_rng(3)
    zeros = np.zeros(40)
    zeros[30] = 500.0
    assert _paged_at(zeros, 30, **HOURLY)
    constant = np.full(40, 5.0)
    constant[30] = 500.0
    assert _paged_at(constant, 30, **HOURLY)
    late = np.concatenate([np.full(20, np.nan), rng.poisson(100.0, 20).astype(float)])
    late[36] = 2000.0
    assert _paged_at(late, 36, **HOURLY)
    daily = np.zeros(12)
    daily[10] = 500.0
    assert _paged_at(daily, 10, period=7, direction="both")
    num, den = np.zeros(40), np.full(40, 1000.0)
    num[30] = 300.0
    seg = detect_series(num[:31], denominators=den[:31], **HOURLY).segments
    assert any(s.start == 30 for s in seg)


def test_the_stored_band_does_not_jump_when_a_bucket_crosses_its_expected_value():
    """While the cycle is unseen the band is widened by one swing for both sides: a warm-up
    that swung only upwards, then hours alternating just above and just below the level,
    keep a band that narrows smoothly as the baseline learns, with no jump from one side's
    width to the other's (the band stored and shown is the one judged, whichever side)."""
    x = np.full(40, 100.0)
    x[[3, 9, 15]] = 800.0
    x[20:] = np.where(np.arange(20) % 2 == 0, 104.0, 96.0)
    d = detect_series(x, **HOURLY)
    judged = np.flatnonzero(np.isfinite(d.score))
    judged = judged[judged >= 20]
    assert judged.size >= 10
    width = (d.upper - d.expected)[judged]
    assert np.all(width[1:] / width[:-1] < 1.02), width
