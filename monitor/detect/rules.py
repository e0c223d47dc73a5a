"""What ``judge`` decides with: thresholds, watched direction, acceptance."""
from __future__ import annotations

import math
from dataclasses import dataclass

from monitor.detect.noise import HUBER
from monitor.detect.state import buckets_per_day


@dataclass(frozen=True)
class Rules:
    threshold: float  # |z| of one bucket that makes it a spike (inf: no spikes)
    direction: str  # "up", "down" or "both"
    accept_after: int  # an anomaly persisting this many buckets becomes the new normal
    shift_threshold: float | None = None  # regime statistic for a level shift (default: threshold)
    shift_min_effect: float = 1.0  # a regime's typical |z| must reach this too
    cusum_threshold: float | None = None  # h of the CUSUM (None: no CUSUM)
    cusum_clip: float = HUBER  # the CUSUM winsorises residuals at this many sd
    fast_threshold: float | None = None  # h of the fast CUSUM (None: none)

    @property
    def up_ok(self) -> bool:
        return self.direction in ("up", "both")

    @property
    def down_ok(self) -> bool:
        return self.direction in ("down", "both")

    @property
    def regime_threshold(self) -> float:
        return self.threshold if self.shift_threshold is None else self.shift_threshold

    @property
    def use_cusum(self) -> bool:
        return self.cusum_threshold is not None and math.isfinite(self.cusum_threshold)


def per_day_threshold(threshold: float, period: int | None) -> float:
    """The one-bucket threshold that keeps the false-spike rate *per day* of a sub-daily
    series equal to that of a daily series at ``threshold``: an hourly series makes 24
    tests a day, so each one gets 1/24 of the normal tail probability (4 sd -> 4.69 sd)."""
    per_day = buckets_per_day(period)
    if per_day == 1 or not math.isfinite(threshold):
        return threshold
    # norm.isf(norm.sf(x) / k) through scipy.special, as scipy.stats computes it, without its import
    from scipy.special import ndtr, ndtri

    return float(-ndtri(ndtr(-threshold) / per_day))
