"""The NAB replay's one-pass shortcut gives the trace the hour-by-hour runs give."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import nab  # noqa: E402


def _hourly(n: int) -> np.ndarray:
    rng = np.random.default_rng(11)
    t = np.arange(n)
    x = rng.poisson(300.0 * (1.0 + 0.4 * np.sin(2 * np.pi * t / 24)) * np.where((t // 24) % 7 >= 5, 0.8, 1.0))
    x = x.astype(float)
    x[1030:1034] *= 1.6  # a burst, then a lasting step and a gap inside the replayed hours
    x[1050:] *= 1.25
    x[1060] = np.nan
    return x


def test_one_pass_replay_equals_hourly_runs():
    x = _hourly(1090)
    fast = nab.replay(x, fast=True)
    stretches = nab._steady_stretches(x, nab.detect)
    first = stretches[-1][0]
    assert first <= 1008 and stretches[-1][1] == x.size  # the shortcut is taken (no whole-history search)
    hours = sorted(set(range(0, first, 7)) | set(range(first - 3, x.size, 2)))  # every stretch, and its edges
    hours += [a - 1 for a, _ in stretches] + [b - 1 for _, b in stretches]
    for t in sorted(set(hours)):
        det = nab.detect(x[: t + 1])
        seg = det.open_segment
        assert fast.open[t] == (seg is not None), t
        if seg is not None:
            assert (fast.seg_start[t], fast.seg_kind[t]) == (seg.start, nab.KINDS.index(seg.kind)), t
        assert np.allclose(fast.score[t], det.score[-1], equal_nan=True), t
    assert fast.open[1030:1100].any()  # the comparison covered open segments


def test_another_detector_is_replayed_hour_by_hour():
    x = _hourly(1090)[:60]
    calls = []

    def det(v):
        calls.append(v.size)
        return nab.detect(v)

    nab.replay(x, det)
    assert calls == list(range(1, 61))
