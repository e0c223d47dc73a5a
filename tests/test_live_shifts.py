"""Level shifts of a plain hourly series, as an hourly header sees them: the detector is run
on the hours so far, every hour, and a page is a segment open now that was not an hour ago.
A shift must page once, when the evidence since its start is enough, and not again each time
a search over the whole history moves its break."""
from __future__ import annotations

import numpy as np

from monitor.detect.series import detect_series

HOURLY = dict(period=(24, 168), direction="both", accept_after=72)


def _series(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 200.0 + 40.0 * np.sin(2 * np.pi * t / 24) + 10.0 * rng.standard_normal(n)


def _live(x: np.ndarray, first: int) -> tuple[list[int], list[int]]:
    """Hours from ``first`` on where a page fires, and the open segment's start at each hour."""
    pages, starts, was_open = [], [], False
    for t in range(first, x.size):
        seg = detect_series(x[: t + 1], **HOURLY).open_segment
        if seg is not None and not was_open:
            pages.append(t)
        starts.append(-1 if seg is None else seg.start)
        was_open = seg is not None
    return pages, starts


def test_a_moderate_hourly_shift_pages_once_and_keeps_its_start():
    # 2 sd up from hour 600 (day 25): too small for any one hour to be a spike (4.7 sd);
    # the day-scale ratio then rests on ~9 days' worth of evidence, so the CUSUM is still
    # cautious (posterior mean ~1.3x the estimate; 12 hours before it learnt R)
    x = _series(24 * 28, seed=1)
    at = 600
    x[at:] += 20.0
    pages, starts = _live(x, at - 24)
    assert len(pages) == 1 and at <= pages[0] <= at + 24
    opened = [s for s in starts if s >= 0]
    assert len(set(opened)) == 1 and abs(opened[0] - at) <= 3


def _wandering(n: int, seed: int) -> np.ndarray:
    """Noise as real hourly series have it: autocorrelated hours (AR(1), phi 0.7) and
    day-level conditions, no change at all."""
    rng = np.random.default_rng(seed)
    e, z = np.zeros(n), rng.standard_normal(n)
    for i in range(1, n):
        e[i] = 0.7 * e[i - 1] + z[i]
    day = np.repeat(rng.standard_normal(n // 24 + 1), 24)[:n]
    return 200.0 + 40.0 * np.sin(2 * np.pi * np.arange(n) / 24) + 8.0 * e + 6.0 * day


def test_wandering_noise_does_not_page_live():
    # a change point search rerun every hour over the whole history paged 4 and 2 times in
    # these four days (a break placed, gone, placed again); sequential evidence does not
    for seed in (1, 4):
        pages, _ = _live(_wandering(24 * 26, seed), 24 * 22)
        assert pages == [], seed


def test_a_new_metric_with_day_level_wander_does_not_page_in_its_first_weeks():
    # a warm-up of three days cannot measure the day-scale variance ratio; taken as 1, the
    # CUSUM signalled on every wandering day of a new metric (cusum.DayScale learns it)
    for seed in (2, 3):
        x = _wandering(24 * 16, seed)
        pages, _ = _live(x, 24 * 4)
        assert pages == [], (seed, pages)


def test_a_new_metric_pages_a_sustained_shift_once_its_day_scale_is_learnt():
    # 4 sd per hour up: too small for a spike; on day 16 the CUSUM knows the day scale of
    # this series (independent hours) and signals within hours; a run of spikes pages a
    # large shift from the first judged days
    x = _series(24 * 19, seed=5)
    at = 24 * 16 + 5
    x[at:] += 40.0
    pages, _ = _live(x, at - 24)
    assert pages and at <= pages[0] <= at + 8, pages
    x = _series(24 * 7, seed=5)
    at = 24 * 4 + 5
    x[at:] += 120.0
    pages, _ = _live(x, at - 24)
    assert pages and at <= pages[0] <= at + 2, pages
