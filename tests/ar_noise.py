"""Unit-variance AR(1) noise for change-point tests: the autocorrelated errors real series have."""
from __future__ import annotations

import math

import numpy as np


def ar1(seed: int, n: int, phi: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.normal(0, math.sqrt(1 - phi * phi), n)
    x = np.empty(n)
    x[0] = rng.normal()
    for i in range(1, n):
        x[i] = phi * x[i - 1] + e[i]
    return x
