"""Change-point regimes, judged as a whole against the frozen baseline.

The change point search (``shifts.py``) proposes regimes; a regime is a level shift when
its first buckets depart significantly from the baseline as it stood when the regime
began (damped trend extrapolated). Once the CUSUM's reference is live, a regime of a ratio
metric is confirmed only if it also departs significantly, the same way, from that
reference: the fast level (hours of memory for hourly data) can overshoot, and a return to
normal must not be judged as a shift against it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from monitor.detect.cusum import Cusum
from monitor.detect.rules import Rules
from monitor.detect.seasonal import compose
from monitor.detect.state import DAMPING, Baseline, RowBaseline

MEDIAN_SD_FACTOR = math.sqrt(math.pi / 2.0)  # sd of a normal sample median, x sqrt(m)


@dataclass
class ShiftPlan:
    """Candidate level shifts from the change point search: at bucket ``start`` series
    ``row`` may enter a new regime lasting until ``end`` (exclusive)."""

    starts: dict[int, list[tuple[int, int]]] = field(default_factory=dict)  # t -> [(row, end)]

    def add(self, row: int, start: int, end: int) -> None:
        self.starts.setdefault(int(start), []).append((int(row), int(end)))


@dataclass
class Shifts:
    """The level shift each series is in: until when (exclusive; change-point regimes), its
    direction and statistic (also set while a CUSUM signal lasts)."""

    until: np.ndarray
    direction: np.ndarray
    stat: np.ndarray

    @classmethod
    def none(cls, n_series: int) -> "Shifts":
        return cls(np.full(n_series, -1), np.zeros(n_series, dtype=int), np.zeros(n_series))

    def confirm(self, t: int, regimes, obs: np.ndarray, den: np.ndarray | None, phase: np.ndarray,
                baseline: Baseline, cusum: Cusum | None, tracked: np.ndarray | None, rules: Rules, min_learnt: int,
                confirmed: list) -> None:
        """Judge the ``regimes`` [(row, end)] that start at ``t``; ``tracked``: rows whose
        CUSUM reference is live."""
        ratio = den is not None
        for row, end in regimes:
            if baseline.learnt[row] < min_learnt:
                continue
            # Only the regime's first accept_after buckets are compared: a level shift is
            # abrupt, so it shows at once; a regime that only drifts away from an
            # extrapolated baseline later (a staircase cut into a trend) is not one.
            head = min(end, t + rules.accept_after)
            x, d = obs[row, t:head], None if den is None else den[row, t:head]
            stat, mean_z = region_stat(x, d, baseline.row(row), phase[t:head], ratio)
            sign = 1 if stat > 0 else -1
            ok = (rules.up_ok and sign > 0) or (rules.down_ok and sign < 0)
            if ok and cusum is not None and tracked[row]:
                # the level has a memory of hours for hourly data and may have chased the
                # last few noisy buckets (or an unflagged excursion the regime now ends):
                # a shift must also depart significantly, the same way, from the slow
                # reference level (learnt from normal buckets only), else it is a return
                # to normal judged against a level that overshot
                ref = baseline.row(row, level=cusum.ref_level[row], trend=cusum.ref_trend[row])
                stat_s, _ = region_stat(x, d, ref, phase[t:head], ratio)
                ok = sign * stat_s >= rules.regime_threshold
            if ok and abs(stat) >= rules.regime_threshold and abs(mean_z) >= rules.shift_min_effect:
                self.until[row], self.direction[row], self.stat[row] = end, sign, abs(stat)
                confirmed.append((row, t))
            elif self.until[row] > t:  # the regime moved back: the shift is over
                self.until[row] = t
                confirmed.append((row, t))


def region_stat(x, den, st: RowBaseline, phases, ratio) -> tuple[float, float]:
    """z-test that a regime departs from the frozen baseline (damped trend extrapolated):
    returns (statistic, typical standardised deviation), both signed."""
    h = np.arange(1, x.size + 1)
    level = st.level + st.trend * DAMPING * (1.0 - DAMPING**h) / (1.0 - DAMPING)
    season = st.season[phases]
    pred = compose(level, season, st.mult)
    pred = np.clip(pred, 0.0, 1.0) if ratio else pred
    sd, _ = st.noise.sd(pred, season, st.mult, den)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (x - pred) / sd
    z = z[np.isfinite(z)]
    if z.size == 0:
        return 0.0, 0.0
    # the median, not the mean: one spike inside an otherwise normal regime must not make
    # the regime look shifted. sd of the median of m normal z's ~ 1.2533 / sqrt(m).
    typical = float(np.median(z))
    return typical * math.sqrt(z.size) / MEDIAN_SD_FACTOR, typical
