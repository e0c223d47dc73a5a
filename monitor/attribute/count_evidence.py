"""Evidence of segments from their event counts, with power that follows the counts.

``localize`` scores leaves one by one (each in noise units, capped), which is right when leaves
are well measured. When they are thin - a leaf expects 0.05 events - no leaf can be anomalous
on its own, and a per-leaf "one event" noise floor makes 5 events where 0.5 were expected look
like noise. The evidence is then in the segment's total: its events against its expected
events, judged as counts.

Every quantity here is a quasi-Poisson deviance: ``2 [O log(O / mu) - (O - mu)] / phi`` with
``phi = max(1, V / E)``, the segment's variance (binomial + uncertainty of the baseline rate +
real wobble of rates, without the per-leaf one-event floor) over its expected events. For a few
events phi is 1 and the test is Poisson's (its power grows with the counts, 0 events where 2.5
were predicted is evidence, 0 where 0.05 were is not); for many events phi grows and a move
is measured against the rates' own wobble, as the leaf scores do.
"""
from __future__ import annotations

import numpy as np
# scipy.special, not scipy.stats: the same functions, without stats' 0.4 s import on every CLI call
from scipy.special import chdtri, xlogy

# Chance, per search, of naming a segment on count evidence when nothing changed: the
# threshold is Bonferroni over every segment searched.
FAMILY_ALPHA = 0.05


def dispersion(expected: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """phi = V / E per segment, at least 1 (counts are at least Poisson-noisy)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(expected > 0, np.maximum(variance / expected, 1.0), 1.0)


def deviance(observed: np.ndarray, mean: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Quasi-Poisson deviance of ``observed`` against ``mean`` (0 where nothing is expected)."""
    observed = np.clip(observed, 0.0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(mean > 0, observed / np.where(mean > 0, mean, 1.0), 1.0)
        d = 2.0 * (xlogy(observed, ratio) - (observed - mean))
    return np.where(mean > 0, np.maximum(d, 0.0), 0.0) / phi


def segment_deviance(observed: np.ndarray, expected: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """Evidence that each segment moved at all: its deviance against "unchanged".

    Against at least one expected event: the expectation of a tiny segment is a model's
    (shrunk towards its parents), not a measurement, and count data cannot resolve less than
    one event (2 events where 0.01 were expected is a Poisson p of 5e-5, and happens in a
    thin world's thousands of segments far more often than that)."""
    floor = np.where(expected > 0, np.maximum(expected, 1.0), 0.0)
    return deviance(observed, floor, dispersion(expected, variance))


def threshold(n_segments: int) -> float:
    """Deviance a segment needs when ``n_segments`` were searched (Bonferroni, one parameter)."""
    return float(chdtri(1, FAMILY_ALPHA / max(n_segments, 1)))  # chi2(1).isf


def z_threshold(n_segments: int) -> float:
    """The same family-wise bar on the z scale: |z| a segment needs when ``n_segments`` were
    searched (two-sided Bonferroni; z^2 is a chi-square of one degree of freedom)."""
    return float(np.sqrt(threshold(n_segments)))


def child_evidence(
    child: tuple[np.ndarray, np.ndarray, np.ndarray],
    parent: tuple[float, float, float],
    pseudo: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Twice the log-likelihood ratio of "only the child moved" over "the parent moved as a
    whole, by one factor", per child (arrays of the children's observed, expected, variance;
    the parent's totals). Large when the child's siblings, well enough measured, did not follow;
    about 0 when they are too thin to tell; negative when they moved alike. Second: the
    siblings' own deviance from "unchanged" (they may have moved by another factor: then the
    parent moved, unevenly, and is still the cause)."""
    o_a, e_a, v_a = child
    o_p, e_p, v_p = parent
    o_b, e_b, v_b = o_p - o_a, e_p - e_a, np.maximum(v_p - v_a, 0.0)
    phi_a, phi_b = dispersion(e_a, v_a), dispersion(e_b, v_b)
    k_parent = factor(np.asarray(o_p), np.asarray(e_p), pseudo)
    k_child = factor(o_a, e_a, pseudo)
    uniform = deviance(o_a, k_parent * e_a, phi_a) + deviance(o_b, k_parent * e_b, phi_b)
    siblings_moved = deviance(o_b, e_b, phi_b)
    only_child = deviance(o_a, k_child * e_a, phi_a) + siblings_moved
    return uniform - only_child, siblings_moved


def factor(observed: np.ndarray, expected: np.ndarray, pseudo: float) -> np.ndarray:
    """observed / expected with ``pseudo`` events on both sides (1 where nothing is expected)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(expected > 0, (observed + pseudo) / (expected + pseudo), 1.0)
