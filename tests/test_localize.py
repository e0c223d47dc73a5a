"""Contract and behaviour of monitor.attribute.localize (Contract 3)."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.attribute.localize import localize

SUM_COLUMNS = ["actual", "expected"]
RATIO_COLUMNS = ["actual_num", "actual_den", "expected_num", "expected_den"]


def _sum_leaves(seed: int, causes: dict[tuple[tuple[str, str], ...], float]) -> pd.DataFrame:
    """3 dimensions (6 x 8 x 5 = 240 leaves), 1 % forecast noise, causes scale their leaves."""
    rng = np.random.default_rng(seed)
    rows = []
    for country, channel, device in itertools.product(
        [f"c{i}" for i in range(6)], [f"h{i}" for i in range(8)], [f"d{i}" for i in range(5)]
    ):
        expected = float(rng.lognormal(mean=5, sigma=1))
        actual = expected * (1 + rng.normal(0, 0.01))
        leaf = {"country": country, "channel": channel, "device": device}
        for cause, factor in causes.items():
            if all(leaf[k] == v for k, v in cause):
                actual *= factor
        rows.append({**leaf, "expected": expected, "actual": actual})
    return pd.DataFrame(rows)


# -- contract ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind, columns", [("sum", SUM_COLUMNS), ("ratio", RATIO_COLUMNS)])
def test_empty_input_gives_no_cause(kind: str, columns: list[str]) -> None:
    empty = pd.DataFrame(columns=["country", "channel", *columns])
    assert localize(empty, ["country", "channel"], kind) == []


def test_single_changed_leaf_is_its_own_cause_with_str_values() -> None:
    leaves = pd.DataFrame([{"shop": 17, "channel": "web", "expected": 100.0, "actual": 40.0}])
    assert localize(leaves, ["shop", "channel"], "sum") == [{"shop": "17", "channel": "web"}]


def test_single_unchanged_leaf_gives_no_cause() -> None:
    leaves = pd.DataFrame(
        [{"shop": 17, "actual_num": 3, "actual_den": 300, "expected_num": 2, "expected_den": 200}]
    )
    assert localize(leaves, ["shop"], "ratio") == []


def test_nothing_changed_gives_no_cause() -> None:
    leaves = _sum_leaves(seed=1, causes={})
    leaves["actual"] = leaves["expected"]
    assert localize(leaves, ["country", "channel", "device"], "sum") == []


def test_bad_input_is_a_clear_error() -> None:
    leaves = _sum_leaves(seed=1, causes={})
    with pytest.raises(ValueError, match="kind"):
        localize(leaves, ["country"], "mean")
    with pytest.raises(ValueError, match="actual_num"):
        localize(leaves, ["country"], "ratio")


# -- sum ---------------------------------------------------------------------------------------


def test_sum_finds_the_exact_two_dimension_cause() -> None:
    cause = (("country", "c2"), ("channel", "h5"))
    leaves = _sum_leaves(seed=2, causes={cause: 0.6})
    assert localize(leaves, ["country", "channel", "device"], "sum") == [dict(cause)]


def test_sum_finds_two_causes_of_different_layers_and_nothing_else() -> None:
    big, small = (("device", "d3"),), (("country", "c1"), ("channel", "h0"))
    leaves = _sum_leaves(seed=3, causes={big: 0.5, small: 1.8})
    found = localize(leaves, ["country", "channel", "device"], "sum")
    assert sorted(map(str, found)) == sorted(map(str, [dict(big), dict(small)]))


def test_integer_dimension_values_come_back_as_str() -> None:
    leaves = _sum_leaves(seed=4, causes={(("country", "c4"),): 0.3})
    leaves["country"] = leaves["country"].str[1:].astype(int)
    assert localize(leaves, ["country", "channel", "device"], "sum") == [{"country": "4"}]


# -- ratio with tiny segments ------------------------------------------------------------------


def _tiny_segment_leaves(seed: int, attacked: str | None) -> pd.DataFrame:
    """5 countries x 4 devices x 60 merchants; most leaves have 1-5 orders.

    Base fraud rate 2 %; a handful of big merchants carry the volume. With ``attacked`` set,
    that country's fraud rate triples on every leaf.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for country, device, merchant in itertools.product(
        ["BR", "US", "DE", "MX", "IN"], ["ios", "android", "web", "app"], range(60)
    ):
        big = merchant < 3
        rate_now = 0.02 * (3.0 if country == attacked else 1.0)
        den0 = int(rng.integers(300, 900)) if big else int(rng.integers(1, 6))
        den1 = int(rng.integers(300, 900)) if big else int(rng.integers(1, 6))
        rows.append(
            {
                "country": country,
                "device": device,
                "merchant": merchant,
                "expected_den": den0,
                "expected_num": int(rng.binomial(den0, 0.02)),
                "actual_den": den1,
                "actual_num": int(rng.binomial(den1, rate_now)),
            }
        )
    return pd.DataFrame(rows)


def test_tiny_segments_do_not_beat_a_real_large_segment_change() -> None:
    leaves = _tiny_segment_leaves(seed=5, attacked="BR")
    # The trap: plenty of 1-5 order leaves jump from 0 % to 100 % fraud by chance.
    rate0 = leaves["expected_num"] / leaves["expected_den"]
    rate1 = leaves["actual_num"] / leaves["actual_den"]
    assert ((rate1 - rate0 >= 0.5) & (leaves["actual_den"] <= 5)).sum() >= 10
    found = localize(leaves, ["country", "device", "merchant"], "ratio")
    assert found == [{"country": "BR"}]


def test_tiny_segment_noise_alone_gives_no_cause() -> None:
    leaves = _tiny_segment_leaves(seed=6, attacked=None)
    assert localize(leaves, ["country", "device", "merchant"], "ratio") == []


def test_traffic_moving_between_segments_is_not_a_rate_cause() -> None:
    """BR doubles its (higher-risk) traffic, every segment keeps its rate: nothing to localise."""
    rows = []
    for country, channel in itertools.product(["BR", "US", "DE"], ["web", "app"]):
        rate = {"BR": 0.05, "US": 0.01, "DE": 0.01}[country]
        den0 = {"BR": 1000, "US": 5000, "DE": 4000}[country]
        den1 = den0 * (2 if country == "BR" else 1)
        rows.append(
            {"country": country, "channel": channel, "expected_den": den0,
             "expected_num": den0 * rate, "actual_den": den1, "actual_num": den1 * rate}
        )
    assert localize(pd.DataFrame(rows), ["country", "channel"], "ratio") == []


def test_a_burst_of_one_and_two_order_leaves_ranks_below_the_large_segment() -> None:
    """Merchant 42: 20 leaves of 1-2 orders, every one of them fraud (0/0 before).

    A plain Poisson score ranks it first (20 "leaves at 100 %"); with tiny leaves shrunk and the
    count floor, the large segment whose rate tripled comes first.
    """
    leaves = _tiny_segment_leaves(seed=5, attacked="BR")
    burst = leaves["merchant"] == 42
    leaves.loc[burst, "actual_den"] = np.where(np.arange(burst.sum()) % 2 == 0, 1, 2)
    leaves.loc[burst, "actual_num"] = leaves.loc[burst, "actual_den"]
    leaves.loc[burst, "expected_num"] = 0
    found = localize(leaves, ["country", "device", "merchant"], "ratio")
    assert found[0] == {"country": "BR"}


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", 3]), st.sampled_from([0, 1]),
            st.integers(0, 30), st.integers(0, 30), st.integers(0, 30), st.integers(0, 30),
        ),
        max_size=12,
    )
)
def test_any_ratio_input_gives_valid_segments(rows: list[tuple]) -> None:
    leaves = pd.DataFrame(
        [
            {"country": c, "device": d, "actual_num": min(an, ad), "actual_den": ad,
             "expected_num": min(en, ed), "expected_den": ed}
            for c, d, an, ad, en, ed in rows
        ],
        columns=["country", "device", *RATIO_COLUMNS],
    )
    found = localize(leaves, ["country", "device"], "ratio", max_causes=2)
    assert len(found) <= 2
    for segment in found:
        assert segment and set(segment) <= {"country", "device"}
        for dim, value in segment.items():
            assert value in set(leaves[dim].astype(str))
