"""The CUSUM's day-scale variance ratio of a plain hourly series, learnt as days accrue:
off until it is known, conservative while it rests on few days, the series' own after,
and not taught by a shift that the CUSUM has not yet signalled."""
from __future__ import annotations

import numpy as np

from monitor.detect.cusum import DayScale


def _feed(scale: DayScale, u: np.ndarray) -> list[float]:
    """Hourly residuals u (N, hours) fed in order; the ratio after each closed day."""
    out = []
    for t in range(u.shape[1]):
        scale.add(t, u[:, t])
        if t % 24 == 23:
            out.append(scale.ratio.copy())
    return out


def _day_wander(rng, n_series: int, days: int, ratio: float) -> np.ndarray:
    """Unit-variance hours whose day means wander: a day's mean x sqrt(24) has variance ``ratio``."""
    day = rng.standard_normal((n_series, days)) * np.sqrt((ratio - 1.0) / 24.0)
    return np.repeat(day, 24, axis=1) + rng.standard_normal((n_series, days * 24))


def test_off_until_known_then_conservative_then_the_series_own():
    rng = np.random.default_rng(0)
    n, days = 400, 60
    s = DayScale.start(np.ones(n), np.zeros(n), 24, days * 24)
    assert np.all(np.isinf(s.ratio)) and np.all(s.scale() == 0.0)
    r = _feed(s, _day_wander(rng, n, days, 9.0))
    med = [float(np.median(x)) for x in r]
    assert np.isinf(med[2])  # 3 days: the MAD of them is worth ~1.1 independent days
    assert med[9] > med[29] > med[59]  # tightens as days accrue
    assert 7.0 < med[59] < 12.0  # toward the series' own ratio (9)


def test_a_warm_up_measurement_counts_as_its_days():
    s = DayScale.start(np.array([4.0]), np.array([7.4]), 24, 24 * 10)
    assert 4.0 < float(s.ratio[0]) < 4.0 * 7.4 / 5.4 + 1e-9


def test_a_shifted_day_does_not_teach_the_ratio():
    # independent hours for 20 days, then 2 days shifted by 2 sd before any signal: a mean
    # of squares would add 24 x 4 per day; the median moves by a few per cent
    rng = np.random.default_rng(1)
    u = _day_wander(rng, 200, 22, 1.0)
    before = _feed(DayScale.start(np.ones(200), np.zeros(200), 24, 22 * 24), u[:, : 20 * 24])[-1]
    u[:, 20 * 24 :] += 2.0
    after = _feed(DayScale.start(np.ones(200), np.zeros(200), 24, 22 * 24), u)[-1]
    assert np.median(after) < 1.5 * np.median(before)


def test_hours_that_are_not_normal_do_not_count():
    s = DayScale.start(np.ones(1), np.zeros(1), 24, 24 * 3)
    u = np.full((1, 72), np.nan)
    u[0, :10] = 0.0  # under half a day observed
    _feed(s, u)
    assert s.days == 3 and np.all(np.isnan(s.stats[:, :3]))
