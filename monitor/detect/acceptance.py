"""Runs of anomalous buckets, and when a persisting one becomes the new normal.

- *Acceptance*: once an anomaly has persisted ``accept_after`` buckets it is the new
  normal: the level is reset to the median of the run's second half and later buckets are
  judged against it. Excluded buckets never count towards acceptance. A CUSUM signal
  whose level has already gone back (a few buckets of attack, then normal buckets its end
  test is still accumulating) ends where it went back instead (``returned_at``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monitor.detect.cusum import Cusum, returned_at
from monitor.detect.regimes import Shifts
from monitor.detect.rules import Rules
from monitor.detect.state import Baseline
from monitor.detect.verdicts import Verdicts


@dataclass
class Runs:
    """The current run of anomalous buckets of each series: length (excluded buckets not
    counted), direction, first bucket."""

    length: np.ndarray
    direction: np.ndarray
    start: np.ndarray

    @classmethod
    def none(cls, n_series: int) -> "Runs":
        return cls(np.zeros(n_series, dtype=int), np.zeros(n_series, dtype=int), np.zeros(n_series, dtype=int))

    def extend(self, t: int, anom: np.ndarray, direction: np.ndarray, judged: np.ndarray, excluded: np.ndarray) -> None:
        """Bucket ``t``'s flags continue a run, start one, or (judged normal) end it."""
        continues = anom & (self.length > 0) & (direction == self.direction)
        new_run = anom & ~continues
        self.start = np.where(new_run, t, self.start)
        self.direction = np.where(anom, direction, self.direction)
        counted = (anom & ~excluded).astype(int)  # known incidents never become the new normal
        self.length = np.where(continues, self.length + counted, np.where(new_run, counted, self.length))
        self.length[judged & ~anom] = 0  # unjudged buckets bridge a run


def accept(t: int, anom: np.ndarray, runs: Runs, rules: Rules, baseline: Baseline, cusum: Cusum | None,
           shifts: Shifts, out: Verdicts, obs: np.ndarray, phase: np.ndarray, excl: np.ndarray) -> None:
    """Accept the runs that have persisted ``accept_after`` buckets as the new normal (or end
    a CUSUM signal that went back); clears ``anom`` where bucket t is normal again."""
    for row in np.flatnonzero(anom & (runs.length >= rules.accept_after)):
        if cusum is not None and cusum.alarm[row] != 0 and shifts.until[row] <= t:
            # a CUSUM signal's end test needs ~h/(2k) normal buckets, often more than
            # accept_after: an attack of a few buckets would be "accepted" with the level it
            # has already left. Decide now which it is.
            back = returned_at(cusum.history[row], np.isfinite(out.score[row]) & ~excl[row],
                               int(runs.start[row]), t, int(cusum.alarm[row]), rules.accept_after)
            if back is not None:
                # the shift's flags go; a bucket that is a spike by itself stays one
                span = slice(back, t + 1)
                zb = out.score[row, span]
                spiky = np.where(rules.up_ok & (zb >= rules.threshold), 1,
                                 np.where(rules.down_ok & (zb <= -rules.threshold), -1, 0))
                out.unflag(row, span, keep=spiky)
                cusum.restart(row)
                cusum.end[row] = 0.0
                cusum.alarm[row] = 0
                # bucket t: normal again (it may update the state), or a spike's own run
                anom[row] = bool(spiky[-1])
                runs.length[row] = int(anom[row] and not excl[row, t])
                runs.start[row], runs.direction[row] = t, spiky[-1]
                continue
        # the new normal is where the series is now: the run's second half (an attack's
        # peak at the start of a run must not set the level it returns from)
        span = slice(t + 1 - max((t + 1 - runs.start[row]) // 2, 1), t + 1)
        baseline.reset_level(row, obs[row, span], phase[span])  # a new regime starts without a trend
        out.accepted.append((int(row), int(runs.start[row]), t + 1))
        runs.length[row] = 0
        shifts.until[row] = -1
        if cusum is not None:
            cusum.ref_level[row], cusum.ref_trend[row] = baseline.level[row], 0.0
            cusum.restart(row)
            cusum.alarm[row] = 0
