"""What ``judge`` returns, and the per-bucket arrays it fills while stepping."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Judgement:
    expected: np.ndarray  # (N, n)
    sd: np.ndarray  # (N, n) sd of the observation around expected
    score: np.ndarray  # (N, n) signed z, NaN where not judged
    anomalous: np.ndarray  # (N, n) bool, direction-aware
    direction: np.ndarray  # (N, n) int8: +1 up / -1 down where anomalous, else 0
    shift: np.ndarray  # (N, n) bool: anomalous as part of a change-point level shift
    shift_score: np.ndarray  # (N, n) region statistic where ``shift``
    accepted: list[tuple[int, int, int]]  # (row, run start, accepted_at)
    confirmed: list[tuple[int, int]]  # (row, t): change points that start or end a level shift
    warmup: int


@dataclass
class Verdicts:
    """Per-bucket outputs of all series, (N, n) each; flags may be set retroactively."""

    expected: np.ndarray
    sd: np.ndarray
    score: np.ndarray
    anomalous: np.ndarray
    direction: np.ndarray
    shift: np.ndarray
    shift_score: np.ndarray
    accepted: list[tuple[int, int, int]] = field(default_factory=list)
    confirmed: list[tuple[int, int]] = field(default_factory=list)  # (row, t): change points that start/end a shift

    @classmethod
    def empty(cls, n_series: int, n: int) -> "Verdicts":
        shape = (n_series, n)
        return cls(np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan), np.zeros(shape, dtype=bool),
                   np.zeros(shape, dtype=np.int8), np.zeros(shape, dtype=bool), np.zeros(shape))

    def record(self, t: int, expected: np.ndarray, sd: np.ndarray, score: np.ndarray) -> None:
        self.expected[:, t], self.sd[:, t], self.score[:, t] = expected, sd, score

    def flag(self, t: int, anom: np.ndarray, direction: np.ndarray, in_shift: np.ndarray, shift_stat: np.ndarray) -> None:
        self.anomalous[:, t] = anom
        self.direction[:, t] = np.where(anom, direction, 0)
        self.shift[:, t] = anom & in_shift
        self.shift_score[:, t] = np.where(anom & in_shift, shift_stat, 0.0)

    def flag_shift(self, row: int, buckets: np.ndarray, sign: int, stat: float) -> None:
        """Flag ``buckets`` of ``row`` as part of a shift found later (retroactively)."""
        self.anomalous[row, buckets] = True
        self.direction[row, buckets] = sign
        self.shift[row, buckets] = True
        self.shift_score[row, buckets] = np.maximum(self.shift_score[row, buckets], stat)

    def unflag(self, row: int, span: slice, keep: np.ndarray | int = 0) -> None:
        """Take back a shift's flags on ``span``; ``keep`` (+1/-1 per bucket) marks spikes that stay."""
        self.anomalous[row, span] = keep != 0 if isinstance(keep, np.ndarray) else False
        self.direction[row, span] = keep
        self.shift[row, span] = False
        self.shift_score[row, span] = 0.0

    def result(self, warmup: int) -> Judgement:
        return Judgement(self.expected, self.sd, self.score, self.anomalous, self.direction, self.shift,
                         self.shift_score, self.accepted, self.confirmed, warmup)
