"""An hourly profile learnt per hour of the week, where the weeks say so: Friday and Saturday
nights are not a weekday's hours scaled (taxi rides), and paged every weekend."""
from __future__ import annotations

import numpy as np

from monitor.detect.seasonal import seasonal_profile
from monitor.detect.series import detect_series

HOURLY = dict(period=(24, 168), direction="both", accept_after=72)


def _rides(n: int, seed: int, nights: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    hod = 1.0 + 0.5 * np.sin(2 * np.pi * t / 24)
    dow = np.where((t // 24) % 7 >= 5, 0.8, 1.0)
    night = np.where(((t // 24) % 7 == 5) & (t % 24 >= 21), nights, 1.0)  # one evening a week
    return rng.poisson(500.0 * hod * dow * night).astype(float)


def test_a_weekly_night_is_learnt_from_the_weeks_and_does_not_page():
    x = _rides(24 * 36, seed=1, nights=1.8)
    det = detect_series(x, **HOURLY)
    assert det.segments == []


def test_a_separable_week_keeps_its_profile():
    # no phase departs from hour-of-day x day-of-week beyond noise: (nearly) the same profile
    x = _rides(504, seed=2, nights=1.0)[None, :]
    prof, mult = seasonal_profile(x, 168, inner=24)
    t = np.arange(168)
    truth = (1.0 + 0.5 * np.sin(2 * np.pi * t / 24)) * np.where(t // 24 >= 5, 0.8, 1.0)
    got = prof[0] / np.mean(prof[0])
    # the separable estimate is within 0.07 here; each phase's own median of 3 weeks would
    # be off by up to ~0.1 (Poisson noise of 4.5 % an hour)
    assert mult[0] and np.max(np.abs(got - truth / truth.mean())) < 0.08


def test_the_weekly_night_is_in_the_profile():
    x = _rides(504, seed=3, nights=1.8)[None, :]
    prof, _ = seasonal_profile(x, 168, inner=24)
    night = prof[0, 5 * 24 + 21 : 5 * 24 + 24].mean() / prof[0, 4 * 24 + 21 : 4 * 24 + 24].mean()
    assert night > 1.3  # Saturday night over Friday's hours: 1.8 x the weekend's 0.8 = 1.44 (separable: 0.8)
