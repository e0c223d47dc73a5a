"""monitor.attribute.explain: verdicts, root causes, JSON round trip, summary."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from monitor.attribute.explain import Explanation, explain


def _mix_shift() -> pd.DataFrame:
    """BR (5 %, riskier) doubles its traffic; every country x channel keeps its rate."""
    rows = []
    for country, channel in itertools.product(["BR", "US", "DE"], ["web", "app"]):
        rate = {"BR": 0.05, "US": 0.01, "DE": 0.01}[country] * (1.5 if channel == "web" else 1.0)
        den0 = {"BR": 1000, "US": 5000, "DE": 4000}[country]
        den1 = den0 * (2 if country == "BR" else 1)
        rows.append(
            {"country": country, "channel": channel, "expected_den": den0,
             "expected_num": den0 * rate, "actual_den": den1, "actual_num": den1 * rate}
        )
    return pd.DataFrame(rows)


def _card_attack(seed: int = 0) -> pd.DataFrame:
    """Fraud rate of country=BR & payment_method=card goes 1 % -> 5 %, traffic unchanged."""
    rng = np.random.default_rng(seed)
    rows = []
    for country, channel, method in itertools.product(
        ["BR", "US", "DE", "MX"], ["web", "app"], ["card", "pix", "paypal"]
    ):
        den = int(rng.integers(2000, 4000))
        attacked = country == "BR" and method == "card"
        rows.append(
            {"country": country, "channel": channel, "payment_method": method,
             "expected_den": den, "expected_num": round(den * 0.01),
             "actual_den": den, "actual_num": round(den * (0.05 if attacked else 0.01))}
        )
    return pd.DataFrame(rows)


DIMS = ["country", "channel", "payment_method"]


def test_pure_mix_shift_is_a_mix_verdict_without_rate_causes() -> None:
    e = explain(_mix_shift(), ["country", "channel"], "ratio", baseline_label="last week")
    assert e.verdict == "mix"
    assert e.split is not None and e.split.dimension == "country"
    assert e.split.rate == pytest.approx(0.0, abs=1e-15)
    assert all(cause.change_type != "rate" for cause in e.causes)
    # the cause is the country whose share moved, even though no rate moved anywhere
    assert e.causes[0].segment == {"country": "BR"} and e.causes[0].change_type == "mix"
    assert "traffic mix did" in e.summary() and "country=BR" in e.summary()


def test_rate_change_in_one_segment() -> None:
    e = explain(_card_attack(), DIMS, "ratio", baseline_label="same weekday last week",
                metric_label="fraud rate")
    assert e.verdict == "rate"
    assert [c.segment for c in e.causes] == [{"country": "BR", "payment_method": "card"}]
    cause = e.causes[0]
    assert cause.change_type == "rate"
    assert cause.explained_share == pytest.approx(1.0, abs=0.02)
    assert (cause.before, cause.after) == pytest.approx((0.01, 0.05), abs=5e-4)
    assert 0.05 < cause.size < 0.12  # one country x one method of 4 x 3
    summary = e.summary()
    assert summary.startswith("fraud rate +")
    assert "vs same weekday last week" in summary
    assert "country=BR · payment_method=card" in summary
    assert "traffic mix did not move, the segment's own rate did" in summary


def test_split_sums_exactly_to_the_total_change() -> None:
    leaves = _card_attack(seed=1)
    leaves.loc[leaves["country"] == "MX", "actual_den"] *= 3  # some mix on top of the rate
    e = explain(leaves, DIMS, "ratio", baseline_label="detector expected value")
    assert e.split is not None and e.change is not None
    assert e.split.mix + e.split.rate + e.split.interaction == pytest.approx(e.change, abs=1e-15)
    for dim in e.dimensions:
        assert sum(v.contribution for v in dim.values) == pytest.approx(e.change, abs=1e-15)


def test_sum_metric_totals_and_shares() -> None:
    leaves = pd.DataFrame(
        [
            {"country": c, "channel": h, "expected": 100.0,
             "actual": 100.0 - (60.0 if (c, h) == ("BR", "web") else 0.0)}
            for c, h in itertools.product(["BR", "US", "DE"], ["web", "app"])
        ]
    )
    e = explain(leaves, ["country", "channel"], "sum", baseline_label="trailing 4-week median",
                metric_label="orders")
    assert (e.before, e.after, e.change) == (600.0, 540.0, -60.0)
    assert e.relative_change == pytest.approx(-0.1)
    assert e.verdict is None and e.split is None
    assert e.dimensions[0].values[0].value == "BR"
    assert e.dimensions[0].values[0].share_of_change == pytest.approx(1.0)
    assert e.summary().startswith("orders -10.0% vs trailing 4-week median")


def test_json_round_trip_is_exact() -> None:
    leaves = _card_attack(seed=2)
    leaves.loc[leaves["country"] == "DE", "actual_den"] = 0  # a segment with no traffic after
    e = explain(leaves, DIMS, "ratio", baseline_label="same weekday last week")
    text = json.dumps(e.to_dict(), allow_nan=False)
    back = Explanation.from_dict(json.loads(text))
    assert back == e
    assert back.to_dict() == e.to_dict()
    assert back.summary() == e.summary()


def _two_countries(scale: int, other_after_num: int) -> pd.DataFrame:
    """NG (2 % fraud) doubles its share of orders; the other countries' rate is 0.5 % before."""
    return pd.DataFrame({
        "country": ["NG", "other"],
        "expected_num": [20 * scale, 135 * scale], "expected_den": [1000 * scale, 27000 * scale],
        "actual_num": [41 * scale, other_after_num * scale], "actual_den": [2000 * scale, 26000 * scale],
    })


def test_a_rate_part_within_sampling_noise_does_not_make_a_mix_shift_mixed() -> None:
    # Other countries 118/26,000 after (0.45 %) against 0.50 %: the rate part is 40 % of the
    # split's magnitude, but well inside the binomial noise of a few hundred events.
    e = explain(_two_countries(1, 118), ["country"], "ratio", baseline_label="last week")
    magnitude = abs(e.split.mix) + abs(e.split.rate) + abs(e.split.interaction)
    assert abs(e.split.mix) < 0.75 * magnitude  # the share rule alone would say "mixed"
    assert abs(e.split.rate + e.split.interaction) < 2 * e.split.rate_se
    assert e.verdict == "mix"
    assert Explanation.from_dict(json.loads(json.dumps(e.to_dict()))) == e
    # The same shares and rates from 10x the volume: the rate drop is real, both moved.
    assert explain(_two_countries(10, 104), ["country"], "ratio", baseline_label="last week").verdict == "mixed"


def test_under_a_mix_verdict_the_country_whose_share_moved_leads_a_small_rate_cause() -> None:
    # BR (5 %) doubles its traffic; one small segment's rate also triples (200 orders, 6 -> 18
    # frauds): the total's move is still mix, so the mix driver is named first
    rows = []
    for country, channel, os_ in itertools.product(["BR", "US", "DE", "NG"], ["web", "app"], ["ios", "android"]):
        rate = {"BR": 0.05, "US": 0.01, "DE": 0.01, "NG": 0.03}[country]
        den0 = {"BR": 1000, "US": 5000, "DE": 4000, "NG": 200}[country]
        den1 = den0 * (2 if country == "BR" else 1)
        bump = 3.0 if (country, channel, os_) == ("NG", "app", "ios") else 1.0
        rows.append({"country": country, "channel": channel, "os": os_, "expected_den": den0,
                     "expected_num": den0 * rate, "actual_den": den1, "actual_num": den1 * rate * bump})
    e = explain(pd.DataFrame(rows), ["country", "channel", "os"], "ratio", baseline_label="last week")
    assert e.verdict == "mix"
    assert [(c.segment, c.change_type) for c in e.causes] == [
        ({"country": "BR"}, "mix"), ({"country": "NG", "channel": "app", "os": "ios"}, "rate")]
