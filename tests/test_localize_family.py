"""A cause can be judged against every segment searched (an option), and is judged against
the noise of the leaves no pick claims (issue 18 item 5).

With hundreds of candidate segments a segment z of 3 turns up by chance: RS-like worlds with no
cause at all had a cause named in 13 of 60 (seeds below). ``FAMILY_Z`` (an option, off) makes
the bar Bonferroni over the segments searched, the family-wise chance the count pick already
used. And a pick's z was
deflated by the spread of one-dimension segments while the other causes were still in them
(every cdn moves with a whole bitrate): later causes fell short of their bar. The worlds come
from ``benchmarks/rca_rs_synthetic.py`` with seeds that its report does not use.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm

from monitor.attribute import count_evidence
from monitor.attribute.localize import localize

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from rca_rs_synthetic import SETTINGS, judge, world  # noqa: E402

WORLDS = 60
SEED_BLOCK = 77  # not a block the benchmark's report uses


def test_the_z_bar_is_bonferroni_over_the_segments_searched() -> None:
    assert abs(count_evidence.z_threshold(1) - norm.isf(0.025)) < 1e-9
    for n in (10, 100, 1_000, 10_000):
        alpha = count_evidence.FAMILY_ALPHA / n
        assert abs(count_evidence.z_threshold(n) - norm.isf(alpha / 2)) < 1e-9
        # the count pick's deviance bar is the same test
        assert abs(count_evidence.z_threshold(n) ** 2 - count_evidence.threshold(n)) < 1e-9
    assert 3.4 < count_evidence.z_threshold(100) < 3.6
    assert 4.0 < count_evidence.z_threshold(1_000) < 4.2


def test_the_family_bar_option_names_no_cause_in_a_world_without_one(monkeypatch) -> None:
    """With ``FAMILY_Z`` (off by default: on the demo it drops a real cause, see localize.py),
    family-wise 5 %: about 3 of 60 may still name one; the fixed z of 3 names 13."""
    monkeypatch.setattr(sys.modules["monitor.attribute.localize"], "FAMILY_Z", True)
    named = 0
    for s in range(WORLDS):
        leaves, dims, truth = world(seed=[SEED_BLOCK, s], setting=SETTINGS["no_cause"])
        assert truth == []
        named += bool(localize(leaves, dims, "ratio"))
    assert named <= 6


def test_three_causes_do_not_hide_one_another() -> None:
    """99 of 180 causes were named exactly before (the others' moves inflated the spread that
    deflates each pick's z); 112 now."""
    exact = extra = 0
    for s in range(WORLDS):
        leaves, dims, truth = world(seed=[SEED_BLOCK, s], setting=SETTINGS["three_causes"])
        verdict = judge(localize(leaves, dims, "ratio"), truth)
        exact += verdict["exact"]
        extra += verdict["extra"]
    assert exact >= 106
    assert extra <= 3


def test_a_lone_cause_is_still_named_on_a_few_segments() -> None:
    """The bar follows the number of segments: a clear move in a small world still passes."""
    rng = np.random.default_rng(0)
    rows = []
    for a in range(4):
        for b in range(3):
            viewers = 2_000.0
            expected = np.mean(rng.binomial(int(viewers), 0.02, size=4))
            rate = 0.02 * (3.0 if a == 1 else 1.0)
            stalls = rng.binomial(int(viewers), rate)
            rows.append({"a": f"a{a}", "b": f"b{b}", "actual_num": stalls,
                         "actual_den": viewers, "expected_num": expected,
                         "expected_den": viewers})
    assert localize(pd.DataFrame(rows), ["a", "b"], "ratio") == [{"a": "a1"}]
