"""Unit-variance AR(1) noise for change-point tests: the autocorrelated errors real series have,
drawn by the synthetic benchmark's own generator (benchmarks/tcpd_synthetic.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from tcpd_synthetic import ar1_noise  # noqa: E402


def ar1(seed: int, n: int, phi: float) -> np.ndarray:
    return ar1_noise(np.random.default_rng(seed), n, phi)
