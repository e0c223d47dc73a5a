"""The RS-like synthetic worlds of ``benchmarks/rca_rs_synthetic.py``: the shape the RS files
have, causes named by their coarsest equivalent, and the per-cause verdicts of the report."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from rca_rs_synthetic import SETTINGS, _coarsest, judge, world  # noqa: E402


@pytest.mark.parametrize("name", ["base", "many_dims", "three_causes", "thin"])
def test_worlds_have_the_rs_shape(name: str) -> None:
    leaves, dims, truth = world(seed=3, setting=SETTINGS[name])
    setting = SETTINGS[name]
    assert setting.dims[0] <= len(dims) <= setting.dims[1]
    assert list(leaves.columns) == [*dims, "actual_num", "actual_den", "expected_num",
                                    "expected_den"]
    assert not leaves.duplicated(subset=dims).any()
    assert (leaves["actual_num"] <= leaves["actual_den"]).all()
    assert ((leaves["actual_den"] > 0) | (leaves["expected_den"] > 0)).all()
    # the measure is the share without a stall: stall rates of a few per cent
    stall = 1 - leaves["expected_num"].sum() / leaves["expected_den"].sum()
    assert 0.001 < stall < 0.2
    assert setting.causes[0] <= len(truth) <= setting.causes[1]
    for cause in truth:
        assert set(cause) <= set(dims)
        member = np.all([leaves[d] == v for d, v in cause.items()], axis=0)
        assert member.any()
    pairs = [set(c.items()) for c in truth]
    assert not any(a < b for a in pairs for b in pairs)  # none contains another


def test_a_world_is_the_same_for_the_same_seed() -> None:
    a, _, ta = world(seed=5, setting=SETTINGS["base"])
    b, _, tb = world(seed=5, setting=SETTINGS["base"])
    assert a.equals(b) and ta == tb


def test_a_cause_is_named_by_its_coarsest_equivalent() -> None:
    # cdn 1 is served on bitrate 0 only: {bitrate 0, cdn 1} is the segment {cdn 1}
    codes = np.array([[0, 0], [0, 1], [1, 0], [1, 2]])
    weight = np.array([10.0, 5.0, 10.0, 5.0])
    assert _coarsest({0: 0, 1: 1}, codes, weight) == {1: 1}
    assert _coarsest({0: 0, 1: 0}, codes, weight) == {0: 0, 1: 0}  # both narrow it


def test_judge_tells_exact_over_specific_too_coarse_missed_and_extra() -> None:
    truth = [{"a": "1"}, {"b": "2", "c": "3"}, {"d": "4"}]
    found = [{"a": "1"}, {"b": "2"}, {"e": "5"}]
    assert judge(found, truth) == {
        "exact": 1, "over-specific": 0, "too-coarse": 1, "missed": 1, "extra": 1
    }
    assert judge([{"d": "4", "e": "5"}], [{"d": "4"}])["over-specific"] == 1
