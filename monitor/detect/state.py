"""The trailing, robust baseline of every series: level + damped trend + seasonal profile.

- *Trailing*: bucket t is judged against a state built from buckets < t only (online
  level + damped trend + seasonal profile: a robust Holt-Winters in the spirit of Gelper,
  Fried & Croux 2010), so a back-fill judges a day exactly as the live run did.
- *Robust*: updates use residuals clipped at 2 sd (Huber), and anomalous or excluded buckets
  do not update the state at all, so an attack cannot lift its own baseline.

``Baseline`` holds the state of all series (arrays over series) and steps one bucket for
all of them at once: ``expected`` before the bucket, ``learn`` from its normal buckets.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monitor.detect.noise import HUBER, LAMBDA, Noise
from monitor.detect.seasonal import compose, decompose

ALPHA = 0.15  # level smoothing: ~7-bucket memory, follows slow drift
BETA = 0.1  # trend smoothing (fraction of the level correction that goes into the trend)
DAMPING = 0.9  # damped trend: a trend is extrapolated ~10 buckets at most, never forever
GAMMA = 0.10  # seasonal smoothing per phase: ~10-cycle memory


def buckets_per_day(period: int | None) -> int:
    """Hourly series are recognised by their daily (24) or weekly (168) cycle."""
    return 24 if period and period % 24 == 0 else 1


def level_alpha(period: int | None) -> float:
    """ALPHA per bucket for daily data (period 7, or none), scaled so that the memory is the
    same span of *time* for hourly buckets (period 24/168). Used for the CUSUM's reference
    level: it must not adapt in hours to a step that daily data would take weeks to absorb."""
    return 1.0 - (1.0 - ALPHA) ** (1.0 / buckets_per_day(period))


@dataclass
class RowBaseline:
    """The baseline of one series, frozen: what a change-point regime is judged against."""

    level: float
    trend: float
    season: np.ndarray  # (P,)
    mult: bool
    noise: Noise


@dataclass
class Baseline:
    level: np.ndarray  # (N,) de-seasonalised
    trend: np.ndarray  # (N,)
    season: np.ndarray  # (N, P): factors where mult, offsets elsewhere
    mult: np.ndarray  # (N,) bool: multiplicative season
    noise: Noise
    learnt: np.ndarray  # (N,) buckets the state has learnt from (warm-up included)

    def expected(self, j: int, ratio: bool) -> np.ndarray:
        """Expected value of the next bucket (seasonal phase ``j``), a rate in [0, 1] for ratio metrics."""
        pred = compose(self.level + DAMPING * self.trend, self.season[:, j], self.mult)
        if ratio:
            pred = np.minimum(np.maximum(pred, 0.0), 1.0)
        return pred

    def sd(self, expected: np.ndarray, j: int, den: np.ndarray | None):
        """sd around ``expected`` and its binomial part: see ``Noise.sd``."""
        return self.noise.sd(expected, self.season[:, j], self.mult, den)

    def row(self, i: int, level=None, trend=None) -> RowBaseline:
        """Series ``i``'s state, or with another level and trend (the CUSUM's reference)."""
        return RowBaseline(self.level[i] if level is None else level, self.trend[i] if trend is None else trend,
                           self.season[i], self.mult[i], self.noise.row(i))

    def learn(self, upd: np.ndarray, residual: np.ndarray, sd: np.ndarray, b: np.ndarray, j: int,
              ratio: bool, lam: float | None = None) -> None:
        """Update level, trend, season phase ``j`` and noise from the normal buckets ``upd``
        (``lam``: see ``Noise.learn``)."""
        season = self.season[:, j]
        fill = np.zeros(upd.shape)
        e = np.where(upd, np.minimum(np.maximum(residual, -HUBER * sd), HUBER * sd), fill)
        g = np.where(self.mult, season, 1.0)  # residuals in de-seasonalised units
        e_level = e / g
        level = self.level + DAMPING * self.trend + ALPHA * e_level
        self.trend = np.where(upd, DAMPING * self.trend + (ALPHA * BETA) * e_level, self.trend)
        # the seasonal term learns what the level does not explain
        s_step = np.where(self.mult, e / np.where(level > 0, level, np.inf), e)
        self.level = np.where(upd, level, self.level)
        self.season[:, j] = season + (GAMMA * (1.0 - ALPHA)) * s_step
        self.noise.learn(upd, residual, sd, g, b, ratio, LAMBDA if lam is None else lam)

    def start(self, rows: np.ndarray, x: np.ndarray, j: int) -> None:
        """Start the level of ``rows`` at their observation ``x`` (without trend or noise)."""
        self.level = np.where(rows, decompose(x, self.season[:, j], self.mult), self.level)
        self.learnt += rows
        self.trend = np.where(rows, 0.0, self.trend)
        self.noise.forget(rows)

    def reset_level(self, i: int, x: np.ndarray, phases: np.ndarray) -> None:
        """New normal after acceptance: the median of ``x`` de-seasonalised, without trend."""
        d = decompose(x, self.season[i][phases], self.mult[i])
        d = d[np.isfinite(d)]
        self.level[i] = float(np.median(d)) if d.size else self.level[i]
        self.trend[i] = 0.0
