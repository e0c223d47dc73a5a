"""Detection options: asked once per metric (``DetectOptions``), resolved per batch of
series (``BatchOptions``) for the detectors."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DIRECTIONS = ("up", "down", "both")
SENSITIVITY = {"low": 1.25, "medium": 1.0, "high": 0.75}  # multipliers on the thresholds
BASE_THRESHOLD = 4.0  # |score| of one bucket that makes it a spike at medium sensitivity
# Longest seasonal cycle that is used only when the series covers this many cycles;
# shorter series fall back to the shorter period of a (24, 168) pair.
MIN_CYCLES_FOR_PERIOD = 3


# A persisting level shift becomes the new normal after this many buckets (header overrides).
ACCEPT_AFTER = {"day": 14, "hour": 72}
# The header's ``seasonality`` -> the cycles (in buckets) requested for each grain.
SEASONALITY = {
    "auto": {"day": 7, "hour": (24, 168)},
    "weekly": {"day": 7, "hour": 168},
    "daily": {"day": None, "hour": 24},
}


@dataclass(frozen=True)
class DetectOptions:
    """How to detect, as asked: built once from a metric header (``from_metric``) or from
    ``detect_batch``'s keywords. The defaults live here and nowhere else; ``resolve``
    validates them against one batch of series."""

    period: object = 7  # requested seasonal cycle(s) in buckets: int, tuple/list of ints, or None
    direction: str = "both"
    sensitivity: object = "medium"  # "low" / "medium" / "high", or a threshold multiplier
    min_volume: float = 0.0
    accept_after: int = 14
    detector: str = "default"

    @classmethod
    def from_metric(cls, metric) -> "DetectOptions":
        """The options of a metric's header (``detect`` settings, defaults by grain)."""
        settings = metric.detect
        return cls(
            period=SEASONALITY.get(settings.seasonality, {}).get(metric.grain),
            direction=settings.direction,
            sensitivity=settings.sensitivity,
            min_volume=float(settings.min_volume),
            accept_after=settings.accept_after or ACCEPT_AFTER[metric.grain],
            detector=settings.detector,
        )

    @property
    def multiplier(self) -> float:
        return sensitivity_multiplier(self.sensitivity)

    @property
    def threshold(self) -> float:
        """|score| of one bucket that makes it a spike on a daily series."""
        return BASE_THRESHOLD * self.multiplier

    def resolve(self, *, n: int, n_series: int, exclude=None) -> "BatchOptions":
        """Validated options for ``n_series`` series of ``n`` buckets (``exclude``: one bool
        mask for all rows or one per row)."""
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {self.direction!r}")
        multiplier = sensitivity_multiplier(self.sensitivity)
        if int(self.accept_after) < 1:
            raise ValueError(f"accept_after must be >= 1, got {self.accept_after!r}")
        mask = None
        if exclude is not None:
            mask = np.asarray(exclude, dtype=bool)
            if mask.ndim == 1:
                mask = np.broadcast_to(mask, (n_series, mask.size))
            if mask.shape != (n_series, n):
                raise ValueError(f"exclude must have one flag per bucket ({n}), got shape {mask.shape}")
        period = self.period
        return BatchOptions(
            period=effective_period(period, n),
            inner_period=inner_period(period, effective_period(period, n)),
            period_requested=list(period) if isinstance(period, (tuple, list)) else period,
            direction=self.direction,
            sensitivity=self.sensitivity,
            multiplier=multiplier,
            min_volume=float(self.min_volume),
            exclude=mask,
            accept_after=int(self.accept_after),
            detector=self.detector,
        )


def sensitivity_multiplier(sensitivity) -> float:
    """Threshold multiplier of a sensitivity name or number."""
    if isinstance(sensitivity, str):
        if sensitivity not in SENSITIVITY:
            raise ValueError(f"sensitivity must be one of {tuple(SENSITIVITY)} or a number, got {sensitivity!r}")
        return SENSITIVITY[sensitivity]
    multiplier = float(sensitivity)
    if not multiplier > 0:
        raise ValueError(f"sensitivity multiplier must be > 0, got {sensitivity!r}")
    return multiplier


@dataclass(frozen=True)
class BatchOptions:
    """``DetectOptions`` resolved for one batch of series: what a detector receives."""

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

        # an hourly series is hourly before its daily cycle is covered (its first two days):
        # it still makes 24 tests a day (NAB dev, first 3 weeks: 230 -> 221 false pages)
        return per_day_threshold(self.threshold, self.period or requested_cycle(self.period_requested))

    @property
    def cycle_unseen(self) -> bool:
        """A cycle was asked for that the series does not yet cover twice (an hourly
        series' first two days, a daily one's first two weeks): with no seasonal profile, its baseline reads the cycle's
        swing (night to day, x2 to x5 on tweet-like counts) as a level change, so there is no
        level-shift test yet; a bucket beyond the spike band still pages, and that band
        is widened by the swing seen so far (``warmup.unseen_swing``)."""
        return self.period is None and requested_cycle(self.period_requested) is not None


def requested_cycle(period) -> int | None:
    """The shortest requested cycle (> 1 bucket), None without one: what tells the
    bucket's grain (24: hourly) when the series is too short to model any cycle."""
    if period is None:
        return None
    ps = [int(p) for p in (period if isinstance(period, (tuple, list)) else (period,)) if int(p) > 1]
    return min(ps) if ps else None


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
