"""monitor.attribute.contributions: hand-computed contributions and the exact mix/rate split."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.attribute.contributions import contributions_by_dimension, ratio_effects


def _by_value(rows: list) -> dict:
    return {row.value: row for row in rows}


def test_sum_contributions_by_hand() -> None:
    leaves = pd.DataFrame(
        [
            {"country": "BR", "channel": "web", "expected": 100, "actual": 160},
            {"country": "BR", "channel": "app", "expected": 50, "actual": 50},
            {"country": "US", "channel": "web", "expected": 200, "actual": 190},
            {"country": "US", "channel": "app", "expected": 150, "actual": 150},
        ]
    )
    parts = contributions_by_dimension(leaves, ["country", "channel"], "sum")
    country, channel = _by_value(parts["country"]), _by_value(parts["channel"])
    assert (country["BR"].before, country["BR"].after, country["BR"].contribution) == (150, 210, 60)
    assert country["BR"].share_of_change == pytest.approx(1.2)
    assert country["US"].share_of_change == pytest.approx(-0.2)
    assert channel["web"].contribution == 50 and channel["app"].contribution == 0
    assert [c.value for c in parts["country"]] == ["BR", "US"]  # largest |contribution| first


def _ratio_leaves() -> pd.DataFrame:
    """R0 = 19/1000 = 0.019, R1 = 48/1000 = 0.048 (country A: 10 % -> 20 % and share 0.1 -> 0.2)."""
    return pd.DataFrame(
        [
            {"country": "A", "channel": "web", "expected_num": 6, "expected_den": 60,
             "actual_num": 30, "actual_den": 150},
            {"country": "A", "channel": "app", "expected_num": 4, "expected_den": 40,
             "actual_num": 10, "actual_den": 50},
            {"country": "B", "channel": "web", "expected_num": 5, "expected_den": 500,
             "actual_num": 4, "actual_den": 400},
            {"country": "B", "channel": "app", "expected_num": 4, "expected_den": 400,
             "actual_num": 4, "actual_den": 400},
        ]
    )


def test_ratio_mix_rate_interaction_by_hand() -> None:
    country = _by_value(contributions_by_dimension(_ratio_leaves(), ["country", "channel"], "ratio")["country"])
    a, b = country["A"], country["B"]
    assert (a.share_before, a.share_after, a.before, a.after) == pytest.approx((0.1, 0.2, 0.1, 0.2))
    assert a.mix == pytest.approx(0.1 * (0.1 - 0.019))  # share moved, A is riskier than average
    assert a.rate == pytest.approx(0.1 * (0.2 - 0.1))  # own rate doubled at the old share
    assert a.interaction == pytest.approx(0.1 * 0.1)
    assert b.mix == pytest.approx(-0.1 * (0.01 - 0.019))  # safer segment lost share: rate goes up
    assert b.rate == pytest.approx(0.0) and b.interaction == pytest.approx(0.0)
    assert a.contribution + b.contribution == pytest.approx(0.048 - 0.019, abs=1e-15)
    assert a.share_of_change == pytest.approx(0.0281 / 0.029)


@pytest.mark.parametrize("dimension", ["country", "channel"])
def test_ratio_parts_sum_exactly_to_the_total_change(dimension: str) -> None:
    rows = contributions_by_dimension(_ratio_leaves(), ["country", "channel"], "ratio")[dimension]
    total = math.fsum(r.mix + r.rate + r.interaction for r in rows)
    assert total == pytest.approx(0.048 - 0.019, rel=1e-12, abs=1e-15)
    assert math.fsum(r.share_of_change for r in rows) == pytest.approx(1.0, rel=1e-12)


def test_average_rate_segment_moving_share_has_no_mix_effect() -> None:
    # C has exactly the average rate (2 %); only its share moves (0.5 -> 0.75).
    mix, rate, interaction = ratio_effects(
        num0=np.array([10.0, 5.0, 5.0]), den0=np.array([500.0, 100.0, 400.0]),
        num1=np.array([15.0, 5.0, 5.0]), den1=np.array([750.0, 100.0, 400.0]),
    )
    assert mix[0] == pytest.approx(0.0, abs=1e-15)
    assert rate[0] == 0.0 and interaction[0] == 0.0


def test_segments_absent_on_one_side_are_pure_mix_and_keep_the_sum_exact() -> None:
    leaves = pd.DataFrame(
        [
            {"country": "old", "expected_num": 10, "expected_den": 100, "actual_num": 0,
             "actual_den": 0},
            {"country": "stay", "expected_num": 10, "expected_den": 900, "actual_num": 9,
             "actual_den": 900},
            {"country": "new", "expected_num": 0, "expected_den": 0, "actual_num": 20,
             "actual_den": 100},
        ]
    )
    rows = _by_value(contributions_by_dimension(leaves, ["country"], "ratio")["country"])
    r0, r1 = 20 / 1000, 29 / 1000
    assert rows["new"].before is None and rows["old"].after is None
    assert rows["new"].mix == pytest.approx(0.1 * (0.2 - r0))  # entered with its own rate
    assert rows["old"].mix == pytest.approx(-0.1 * (0.1 - r0))  # left with its old rate
    for row in (rows["new"], rows["old"]):
        assert row.rate == 0.0 and row.interaction == 0.0
    total = math.fsum(r.contribution for r in rows.values())
    assert total == pytest.approx(r1 - r0, abs=1e-15)


counts = st.lists(
    st.tuples(
        st.integers(0, 50), st.integers(0, 500), st.integers(0, 50), st.integers(0, 500)
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=60, deadline=None)
@given(counts)
def test_split_is_exact_for_any_segments(rows: list[tuple[int, int, int, int]]) -> None:
    num0, den0, num1, den1 = (np.array(c, dtype=float) for c in zip(*rows))
    num0, num1 = np.minimum(num0, den0), np.minimum(num1, den1)
    if den0.sum() == 0 or den1.sum() == 0:
        return
    mix, rate, interaction = ratio_effects(num0, den0, num1, den1)
    expected_change = num1.sum() / den1.sum() - num0.sum() / den0.sum()
    assert math.fsum(np.concatenate([mix, rate, interaction])) == pytest.approx(
        expected_change, abs=1e-12
    )
