"""The sequential judge shared by the mean and distribution kinds.

Both kinds reduce a bucket to a standardised score against a trailing baseline whose null
behaviour is known at the bucket's volume (``monitor.detect.mean``: the standard error of
the mean; ``monitor.detect.distribution``: a volume-aware chi-square). This module walks
the buckets in time order, as the default detector does, so that anomalous buckets stay
out of the baseline until a persisting shift is accepted as the new normal, and turns the
anomalous buckets into ``SeriesDetection`` segments the rest of the product already knows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from monitor.detect.results import AnomalySegment, SeriesDetection, relative_change

WINDOW = 28  # baseline buckets (4 weeks of days): long enough to average out a weekly cycle
MIN_BASELINE = 7  # judged only with at least this many usable baseline buckets
# |z| of one bucket, and of two consecutive buckets pooled (a sustained shift), that is
# anomalous at medium sensitivity. Normal tails: 3.5 sd one-sided is p = 2.3e-4, about
# 0.1 false buckets per series-year per test on daily data before the estimation error
# of the baseline, which benchmarks/kinds.py measures (goal <= 1 false alarm a year).
Z_THRESHOLD = 3.5


@dataclass
class Step:
    """What a kind computes for bucket t of every series, given the usable baseline mask."""

    z1: np.ndarray  # signed score of bucket t alone (+ = up / more divergent)
    z2: np.ndarray  # signed score of buckets t-1 and t pooled (NaN when t-1 is not judged)
    expected: np.ndarray  # baseline value shown for bucket t
    observed: np.ndarray  # value shown for bucket t
    sd: np.ndarray  # sd of observed around expected (for the band), NaN if unknown


def walk(n_series: int, n: int, valid: np.ndarray, exclude: np.ndarray | None,
         step: Callable[[int, np.ndarray], Step], *, multiplier: float, direction: str,
         accept_after: int, two_sided: bool) -> tuple[dict[str, np.ndarray], np.ndarray, list[list[AnomalySegment]]]:
    """Run ``step`` for every bucket in time order. ``valid`` (series x n) marks buckets with
    enough volume; ``exclude`` buckets never join a baseline (closed incidents). Returns the
    per-bucket arrays, the anomalous mask and the segments of every series."""
    thr = Z_THRESHOLD * multiplier
    usable = valid.copy()
    if exclude is not None:
        usable &= ~np.broadcast_to(exclude, usable.shape)
    arrays = {k: np.full((n_series, n), np.nan) for k in ("z", "expected", "observed", "sd")}
    anomalous = np.zeros((n_series, n), bool)
    run = np.zeros(n_series, int)  # length of the current anomalous run
    accepted_at = np.full((n_series, n), -1)
    for t in range(n):
        lo = max(0, t - WINDOW)
        mask = usable[:, lo:t]
        enough = mask.sum(axis=1) >= MIN_BASELINE
        if not enough.any():
            continue
        s = step(t, mask)
        judged = enough & valid[:, t] & np.isfinite(s.z1)
        z = np.where(np.abs(np.nan_to_num(s.z2)) > np.abs(np.nan_to_num(s.z1)), s.z2, s.z1)
        arrays["z"][:, t] = np.where(judged, z, np.nan)
        arrays["expected"][:, t] = np.where(enough, s.expected, np.nan)
        arrays["observed"][:, t] = np.where(valid[:, t], s.observed, np.nan)
        arrays["sd"][:, t] = np.where(enough, s.sd, np.nan)
        zz = np.nan_to_num(z)
        if two_sided and direction == "up":
            hit = zz > thr
        elif two_sided and direction == "down":
            hit = zz < -thr
        else:
            hit = np.abs(zz) > thr
        hit &= judged
        anomalous[:, t] = hit
        usable[:, t] &= ~hit  # an anomaly does not teach the baseline
        run = np.where(hit, run + 1, 0)
        # a shift that persists accept_after buckets is the new normal: its buckets teach
        # the baseline again, so the next buckets are judged against the new level
        done = run >= accept_after
        if done.any():
            for i in np.flatnonzero(done):
                first = t - run[i] + 1
                keep = valid[i, first:t + 1].copy()
                if exclude is not None:
                    keep &= ~(exclude[i] if exclude.ndim == 2 else exclude)[first:t + 1]
                usable[i, first:t + 1] = keep
                usable[i, :first] = False  # the old level is history: the baseline is the new one
                accepted_at[i, first] = t + 1
            run = np.where(done, 0, run)
    segments = [_segments(anomalous[i], arrays, i, accepted_at[i], direction_of=two_sided) for i in range(n_series)]
    return arrays, anomalous, segments


def _segments(hit: np.ndarray, arrays: dict[str, np.ndarray], i: int, accepted_at: np.ndarray,
              *, direction_of: bool) -> list[AnomalySegment]:
    out = []
    n = hit.size
    t = 0
    while t < n:
        if not hit[t]:
            t += 1
            continue
        start = t
        if accepted_at[start] >= 0:
            t = int(accepted_at[start])
        else:
            while t < n and hit[t]:
                t += 1
        end = t if t < n else None
        span = slice(start, t)
        z = arrays["z"][i, span]
        base = float(np.nanmean(arrays["expected"][i, span]))
        obs = float(np.nanmean(arrays["observed"][i, span]))
        acc = int(accepted_at[start]) if accepted_at[start] >= 0 else None
        up = (np.nanmean(z) > 0) if direction_of else obs >= base
        out.append(AnomalySegment(
            start=start, end=end,
            direction="up" if up else "down", kind="level_shift" if t - start >= 2 else "spike",
            baseline=base, observed=obs, relative_change=relative_change(obs, base),
            score=float(np.nanmax(np.abs(z))), accepted=acc is not None, accepted_at=acc))
    return out


def detection(arrays: dict[str, np.ndarray], anomalous: np.ndarray, segments, i: int, multiplier: float,
              params: dict) -> SeriesDetection:
    """The ``SeriesDetection`` of series i (band: expected +- threshold sd)."""
    thr = Z_THRESHOLD * multiplier
    exp, sd = arrays["expected"][i], arrays["sd"][i]
    return SeriesDetection(expected=exp, lower=exp - thr * sd, upper=exp + thr * sd, observed=arrays["observed"][i],
                           score=arrays["z"][i], anomalous=anomalous[i], change_points=[], segments=segments[i],
                           params={**params, "threshold": thr, "baseline_buckets": WINDOW})
