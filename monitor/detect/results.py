"""What a detector returns for one series: per-bucket arrays plus anomaly segments."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AnomalySegment:
    start: int  # first anomalous bucket index
    end: int | None  # exclusive end; None if still anomalous at the last bucket (open)
    direction: str  # "up" | "down"
    kind: str  # "level_shift" | "spike" | "mix_shift" (the traffic mix alone moved a ratio total)
    baseline: float  # expected value (rate for ratio metrics) over the segment
    observed: float  # observed value (rate for ratio) over the segment
    relative_change: float  # observed/baseline - 1 (inf-safe)
    score: float  # higher is more abnormal
    accepted: bool  # a persisting level shift accepted as the new normal
    accepted_at: int | None
    why: dict | None = None  # evidence beyond the series' detector params (e.g. a traffic-mix run)

    def to_dict(self) -> dict:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


@dataclass(frozen=True)
class SeriesDetection:
    expected: np.ndarray  # baseline per bucket (rate for ratio)
    lower: np.ndarray  # band: outside it a bucket is a spike
    upper: np.ndarray
    observed: np.ndarray  # value (or rate) per bucket, NaN where below the volume floor
    score: np.ndarray  # signed standardised deviation (+ above expected); NaN = not judged
    anomalous: np.ndarray  # bool per bucket, direction-aware
    change_points: list[int]
    segments: list[AnomalySegment]
    params: dict  # "why it fired": detector, thresholds, baseline description; JSON-safe

    @property
    def open_segment(self) -> AnomalySegment | None:
        """The segment still anomalous at the last bucket, if any (what alerts care about)."""
        for seg in reversed(self.segments):
            if seg.end is None:
                return seg
        return None


def relative_change(observed: float, baseline: float) -> float:
    """observed/baseline - 1 without dividing by zero: +-inf when the baseline is 0 and
    the observation is not, 0 when both are 0."""
    if baseline == 0 or not math.isfinite(baseline):
        if observed == 0 or not math.isfinite(observed):
            return 0.0
        return math.copysign(math.inf, observed)
    return float(observed / baseline - 1.0)
