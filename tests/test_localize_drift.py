"""Causes on a drifting population, and several causes in one dimension, are named.

A rule that stopped the search at a pick "the rest of the population moved with" (session 12,
reverted) cut false causes on drift-only worlds, but the review found it dropped a cause whose own
factor is no larger than the drift's (x1.3 on a x1.5 drift: 10/10 named before, 0/10 with it),
and three causes of one dimension that together hold most traffic (each looked like the others'
drift: 20/20 named before, 14/20 with it). These worlds keep any such rule honest.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from monitor.attribute.localize import localize

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from rca_rs_synthetic import SETTINGS, judge, world  # noqa: E402

SEED_BLOCK = 77  # not a block the benchmark's report uses


def grid_world(seed: int, factor: dict[str, float]) -> tuple[pd.DataFrame, list[str]]:
    """A stall rate over 4 x 3 x 5 values with well measured leaves; ``factor`` maps "all" and
    segment names like "a0" to a rate factor (the segment's on top of the population's)."""
    rng = np.random.default_rng(seed)
    cards = (4, 3, 5)
    names = ["a", "b", "c"]
    grid = np.stack(np.meshgrid(*[np.arange(c) for c in cards], indexing="ij"), -1).reshape(-1, 3)
    shares = [rng.dirichlet(np.full(c, 2.0)) for c in cards]
    traffic = 2e5 * np.prod([shares[j][grid[:, j]] for j in range(3)], axis=0)
    rate = 0.04 * np.prod([rng.lognormal(0.0, 0.2, c)[grid[:, j]] for j, c in enumerate(cards)],
                          axis=0)
    labels = pd.DataFrame({n: [f"{n}{v}" for v in grid[:, j]] for j, n in enumerate(names)})
    move = np.full(len(grid), factor.get("all", 1.0))
    for segment, k in factor.items():
        if segment != "all":
            move[labels[segment[0]].to_numpy() == segment] *= k

    def minute(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        viewers = rng.poisson(traffic)
        p = np.clip(rate * f * rng.lognormal(0.0, 0.05, len(grid)), 0.0, 0.9)
        return rng.binomial(viewers, p).astype(float), viewers.astype(float)

    past = [minute(np.ones(len(grid))) for _ in range(4)]
    stalls, viewers = minute(move)
    frame = labels.copy()
    frame["actual_num"], frame["actual_den"] = stalls, viewers
    frame["expected_num"] = np.mean([s for s, _ in past], axis=0)
    frame["expected_den"] = np.mean([v for _, v in past], axis=0)
    return frame, names


def test_a_cause_on_top_of_a_uniform_move_is_named() -> None:
    for s in range(10):
        frame, dims = grid_world(seed=s, factor={"all": 1.3, "b1": 3.0})
        assert localize(frame, dims, "ratio") == [{"b": "b1"}]


def test_a_cause_smaller_than_the_drift_it_sits_on_is_named() -> None:
    named = 0
    for s in range(10):
        frame, dims = grid_world(seed=s, factor={"all": 1.5, "b1": 1.3})
        named += {"b": "b1"} in localize(frame, dims, "ratio")
    assert named >= 9  # 10 of 10


def test_three_causes_in_one_dimension_are_each_named() -> None:
    """a0, a1 and a2 x3 (most of the traffic), a3 unchanged: three causes, not a drift."""
    exact = 0
    for s in range(20):
        frame, dims = grid_world(seed=s, factor={"a0": 3.0, "a1": 3.0, "a2": 3.0})
        found = localize(frame, dims, "ratio")
        exact += sorted(map(str, found)) == sorted(map(str, [{"a": "a0"}, {"a": "a1"}, {"a": "a2"}]))
    assert exact >= 18  # 20 of 20


def test_rs_like_causes_on_a_drift_are_found() -> None:
    exact = 0
    for s in range(40):
        leaves, dims, truth = world(seed=[SEED_BLOCK, s], setting=SETTINGS["cause_in_drift"])
        exact += judge(localize(leaves, dims, "ratio"), truth)["exact"]
    assert exact >= 27  # 30 of 40
