"""Validated detection options, shared by every detector."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DIRECTIONS = ("up", "down", "both")
SENSITIVITY = {"low": 1.25, "medium": 1.0, "high": 0.75}  # multipliers on the thresholds
BASE_THRESHOLD = 4.0  # |score| of one bucket that makes it a spike at medium sensitivity
# Longest seasonal cycle that is used only when the series covers this many cycles;
# shorter series fall back to the shorter period of a (24, 168) pair.
MIN_CYCLES_FOR_PERIOD = 3


@dataclass(frozen=True)
class DetectOptions:
    period: int | None  # effective seasonal period in buckets (None = no seasonality)
    inner_period: int | None  # a shorter requested cycle nested in it (24 inside 168), or None
    period_requested: object  # what the caller asked for (int, tuple or None), for params
    direction: str
    sensitivity: object  # as given
    multiplier: float  # threshold multiplier derived from sensitivity
    min_volume: float
    exclude: np.ndarray | None  # (N, n) bool or None
    accept_after: int
    detector: str

    @property
    def threshold(self) -> float:
        """Threshold for regime statistics (level shifts), and for spikes on daily series."""
        return BASE_THRESHOLD * self.multiplier

    @property
    def spike_threshold(self) -> float:
        """One-bucket threshold: higher for hourly series, which test 24 buckets a day."""
        from monitor.detect.rules import per_day_threshold

        return per_day_threshold(self.threshold, self.period)


def effective_period(period, n: int) -> int | None:
    """One period to model: the longest requested one the series covers
    ``MIN_CYCLES_FOR_PERIOD`` times (weekly-of-hourly needs 3 weeks), else the shortest."""
    if period is None:
        return None
    periods = sorted({int(p) for p in (period if isinstance(period, (tuple, list)) else (period,))})
    if any(p < 1 for p in periods):
        raise ValueError(f"period must be positive, got {period!r}")
    periods = [p for p in periods if p > 1]
    if not periods:
        return None
    usable = [p for p in periods if n >= MIN_CYCLES_FOR_PERIOD * p]
    if usable:
        return usable[-1]
    return periods[0] if n >= 2 * periods[0] else None


def inner_period(period, effective: int | None) -> int | None:
    """The longest requested cycle shorter than ``effective`` that divides it: the weekly
    profile of hourly data is then built as hour-of-day x day-of-week (24 + 7 numbers
    estimated from all the history) instead of 168 numbers from two or three weeks."""
    if not effective or not isinstance(period, (tuple, list)):
        return None
    inner = [int(p) for p in period if 1 < int(p) < effective and effective % int(p) == 0]
    return max(inner) if inner else None


def make_options(
    *,
    n: int,
    n_series: int,
    period,
    direction: str,
    sensitivity,
    min_volume: float,
    exclude,
    accept_after: int,
    detector: str,
) -> DetectOptions:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if isinstance(sensitivity, str):
        if sensitivity not in SENSITIVITY:
            raise ValueError(f"sensitivity must be one of {tuple(SENSITIVITY)} or a number, got {sensitivity!r}")
        multiplier = SENSITIVITY[sensitivity]
    else:
        multiplier = float(sensitivity)
        if not multiplier > 0:
            raise ValueError(f"sensitivity multiplier must be > 0, got {sensitivity!r}")
    if int(accept_after) < 1:
        raise ValueError(f"accept_after must be >= 1, got {accept_after!r}")
    mask = None
    if exclude is not None:
        mask = np.asarray(exclude, dtype=bool)
        if mask.ndim == 1:
            mask = np.broadcast_to(mask, (n_series, mask.size))
        if mask.shape != (n_series, n):
            raise ValueError(f"exclude must have one flag per bucket ({n}), got shape {mask.shape}")
    return DetectOptions(
        period=effective_period(period, n),
        inner_period=inner_period(period, effective_period(period, n)),
        period_requested=list(period) if isinstance(period, (tuple, list)) else period,
        direction=direction,
        sensitivity=sensitivity,
        multiplier=multiplier,
        min_volume=float(min_volume),
        exclude=mask,
        accept_after=int(accept_after),
        detector=detector,
    )
