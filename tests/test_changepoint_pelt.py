"""The mean-model search calls ruptures' compiled PELT directly (``changepoint._pelt_l2``),
without importing the ruptures package: the same change points as ``KernelCPD``, and a
detection that does not load ruptures' estimators."""
from __future__ import annotations

import math
import subprocess
import sys
import textwrap

import numpy as np

from monitor.detect import changepoint


def _series(rng: np.random.Generator, n: int, kind: int) -> np.ndarray:
    if kind == 0:  # noise with a few level shifts
        z = rng.standard_normal(n)
        for cut in rng.integers(1, n, size=rng.integers(0, 4)):
            z[cut:] += rng.normal(0, 3)
        return z
    if kind == 1:  # small integers: many exact ties between segmentations
        return rng.integers(0, 3, size=n).astype(float)
    if kind == 2:  # constant stretches
        return np.repeat(rng.normal(0, 2, size=n // 10 + 1), 10)[:n]
    return np.cumsum(rng.standard_normal(n))  # a wandering level: many changes


def test_the_direct_search_gives_kernelcpds_change_points():
    import ruptures as rpt

    assert changepoint._pelt_l2() is not None
    rng = np.random.default_rng(11)
    checked = 0
    for _ in range(600):
        n = int(rng.integers(6, 400))
        kind = int(rng.integers(0, 4))
        z = _series(rng, n, kind)
        assert z.size == n
        min_size = int(rng.integers(1, 6))
        pen = float(rng.choice([2 * math.log(n), 0.5, 10.0, rng.uniform(0.1, 30)]))
        if n < 2 * min_size:
            continue
        ref = [int(b) for b in rpt.KernelCPD(kernel="linear", min_size=min_size, jump=1)
               .fit(z.reshape(-1, 1)).predict(pen=pen) if b < n]
        assert changepoint.segment(z, model="mean", penalty=pen, min_size=min_size) == ref, (n, kind, min_size, pen)
        checked += 1
    assert checked > 500


def test_without_the_direct_function_the_public_api_answers(monkeypatch):
    rng = np.random.default_rng(5)
    z = rng.standard_normal(120)
    z[60:] += 2.5
    direct = changepoint.segment(z, model="mean", penalty=2 * math.log(120), min_size=3)
    monkeypatch.setattr(changepoint, "_pelt_l2", lambda: None)
    assert changepoint.segment(z, model="mean", penalty=2 * math.log(120), min_size=3) == direct
    assert 55 <= direct[0] <= 65


def test_a_mean_search_does_not_import_the_ruptures_package():
    code = textwrap.dedent("""
        import sys
        import numpy as np
        from monitor.detect import changepoint
        z = np.r_[np.zeros(40), np.ones(40) * 5] + np.random.default_rng(1).standard_normal(80)
        print(changepoint.segment(z, model="mean", penalty=10.0, min_size=3))
        print(sorted(m for m in ("ruptures", "scipy.signal", "scipy.spatial") if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    cps, loaded = out.stdout.strip().splitlines()
    assert cps == "[40]"
    assert loaded == "[]"


def test_a_series_shorter_than_two_segments_has_no_change():
    assert changepoint.segment(np.r_[0.0, 0.0, 9.0, 9.0, 9.0], model="mean", penalty=0.1, min_size=3) == []


def test_another_ruptures_release_gets_the_public_api(monkeypatch):
    """The direct call rests on a private signature checked here for the 1.1 series only."""
    import importlib.metadata

    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda d: "1.2.0" if d == "ruptures" else real(d))
    changepoint._pelt_l2.cache_clear()
    try:
        assert changepoint._pelt_l2() is None
        z = np.r_[np.zeros(40), np.full(40, 3.0)] + np.random.default_rng(1).normal(0, 0.5, 80)
        assert changepoint.segment(z, model="mean", penalty=10.0, min_size=5) == [40]
    finally:
        changepoint._pelt_l2.cache_clear()


def test_a_min_size_below_one_is_read_as_one_as_kernelcpd_does():
    """The C function trusts min_size (below 1 it read out of bounds and crashed the process)."""
    import ruptures as rpt

    z = np.r_[np.zeros(30), np.full(30, 3.0)] + np.random.default_rng(1).normal(0, 1, 60)
    expected = [b for b in rpt.KernelCPD(kernel="linear", min_size=1, jump=1).fit(z.reshape(-1, 1)).predict(pen=10.0)
                if b < z.size]
    for min_size in (0, -2):
        assert changepoint.segment(z, model="mean", penalty=10.0, min_size=min_size) == expected
