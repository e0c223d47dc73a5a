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
    # never a segment and one of its ancestors: the coarser one already names the change
    pairs = [set(segment.items()) for segment in found]
    assert not any(a < b for a in pairs for b in pairs), found


# -- demo-world regressions: shrinkage must not fake a segment change ------------------------


def _decline_leaves(seed: int, change_days: int = 6, paypal_factor: float = 0.55) -> pd.DataFrame:
    """Payment decline rate over a 7-day window against the mean of the 4 weeks before.

    Countries differ a lot in decline rate (NG 15.5 %, US 5.5 %) and most leaves (country x
    method x card bin x device) have a few dozen attempts. From day ``7 - change_days`` on, the
    paypal decline rate is multiplied by ``paypal_factor`` (the demo: 8.3 % -> 4.7 %, starting
    one day into the window, so 1/7 of the window is unchanged).
    """
    rng = np.random.default_rng(seed)
    countries = {  # traffic share, decline rate
        "US": (0.30, 0.055), "GB": (0.12, 0.05), "DE": (0.10, 0.05), "FR": (0.08, 0.054),
        "BR": (0.07, 0.105), "IN": (0.06, 0.10), "MX": (0.05, 0.09), "CA": (0.04, 0.05),
        "NG": (0.04, 0.155), "ES": (0.03, 0.06), "IT": (0.03, 0.065), "ZA": (0.02, 0.12),
        "ID": (0.02, 0.11), "PH": (0.02, 0.11), "NL": (0.015, 0.046), "AU": (0.02, 0.055),
        "TR": (0.01, 0.095), "PL": (0.01, 0.06), "AR": (0.006, 0.105), "SE": (0.005, 0.046),
        "JP": (0.005, 0.04), "VN": (0.004, 0.10),
    }
    methods = {"card": (0.53, 1.05), "paypal": (0.18, 1.2), "apple_pay": (0.11, 0.45),
               "google_pay": (0.06, 0.5), "bnpl": (0.07, 1.5), "bank_transfer": (0.05, 0.9)}
    bins = [f"{b}xx" for b in (2221, 3528, 3782, 4147, 4266, 4532, 4716, 4929, 5105, 5234, 5425,
                               5555, 6011, 6521)]
    oses = {"android": 0.37, "ios": 0.30, "windows": 0.21, "macos": 0.09, "other": 0.03}
    bin_factor = dict(zip(bins, rng.lognormal(0, 0.2, len(bins))))
    os_factor = dict(zip(oses, rng.lognormal(0, 0.1, len(oses))))
    rows = []
    for (country, (c_share, c_rate)), (method, (m_share, m_factor)), (os_, o_share) in (
        itertools.product(countries.items(), methods.items(), oses.items())
    ):
        for card_bin in bins if method == "card" else ["none"]:
            per_day = 15000.0 * c_share * m_share * o_share / (len(bins) if method == "card" else 1)
            rate = c_rate * m_factor * os_factor[os_] * (bin_factor.get(card_bin, 1.0))
            past_den = rng.poisson(per_day * 7, size=4)
            den_before = rng.poisson(per_day * (7 - change_days))
            den_after = rng.poisson(per_day * change_days)
            rate_now = rate * (paypal_factor if method == "paypal" else 1.0)
            rows.append({
                "country": country, "payment_method": method, "card_bin": card_bin,
                "device_os": os_,
                "actual_num": rng.binomial(den_before, rate) + rng.binomial(den_after, rate_now),
                "actual_den": den_before + den_after,
                "expected_num": rng.binomial(past_den, rate).mean(),
                "expected_den": past_den.mean(),
            })
    return pd.DataFrame(rows)


DECLINE_DIMS = ["country", "payment_method", "card_bin", "device_os"]


@pytest.mark.parametrize("seed", [0, 1])
def test_partial_window_paypal_drop_beats_a_high_rate_country(seed: int) -> None:
    """Demo: payment_decline_rate 08-25..09-01. Shrinking NG's small leaves towards the overall
    rate made NG&card look like a +60 % rise; the real change is paypal, diluted by one
    unchanged day out of seven."""
    found = localize(_decline_leaves(seed=seed), DECLINE_DIMS, "ratio")
    assert found == [{"payment_method": "paypal"}]


def test_full_window_paypal_drop_is_found() -> None:
    found = localize(_decline_leaves(seed=2, change_days=7), DECLINE_DIMS, "ratio")
    assert found == [{"payment_method": "paypal"}]


@pytest.mark.parametrize("seed", range(4))
def test_a_high_rate_segment_with_small_leaves_is_not_a_change(seed: int) -> None:
    """Nothing changed: the high-rate country made of small leaves must not come out as a cause
    (shrinking its leaves towards the overall rate made NG look up 30-40 % in every world).
    With ~2000 leaves, one leaf a little past 3 sigma may still be reported; that is the
    acceptance threshold's business, not this test's."""
    found = localize(_decline_leaves(seed=seed, paypal_factor=1.0), DECLINE_DIMS, "ratio")
    assert not [segment for segment in found if segment.get("country") == "NG"], found
    assert not [segment for segment in found if len(segment) == 1], found


def _refund_leaves(seed: int, days: int) -> pd.DataFrame:
    """Refund rate by merchant category x country x channel; most leaves have < 10 orders a day.

    Fashion is the biggest category with the highest rate (7.8 %) and moves +6 % that day;
    the other categories wobble by ~8 %; gift cards go from 1.5 % to 6 % (the demo incident).
    """
    rng = np.random.default_rng(seed)
    categories = {  # traffic share, refund rate
        "fashion": (0.22, 0.078), "electronics": (0.18, 0.046), "grocery": (0.14, 0.016),
        "home": (0.13, 0.036), "beauty": (0.10, 0.024), "sports": (0.07, 0.047),
        "toys": (0.06, 0.041), "gift_cards": (0.06, 0.015), "travel": (0.04, 0.066),
    }
    countries = dict(zip(
        ["US", "GB", "DE", "FR", "BR", "IN", "MX", "CA", "ES", "IT", "AU", "PL", "TR", "ZA", "JP"],
        [0.30, 0.12, 0.10, 0.08, 0.07, 0.06, 0.05, 0.04, 0.04, 0.03, 0.03, 0.02, 0.02, 0.02, 0.02],
    ))
    channels = {"web": (0.45, 1.0), "app": (0.35, 0.85), "marketplace": (0.20, 1.3)}
    country_factor = dict(zip(countries, rng.lognormal(0, 0.15, len(countries))))
    wobble = {k: float(rng.lognormal(0, 0.08)) for k in categories}
    wobble.update(fashion=1.06, gift_cards=4.0)
    rows = []
    for (cat, (k_share, k_rate)), (country, c_share), (channel, (h_share, h_factor)) in (
        itertools.product(categories.items(), countries.items(), channels.items())
    ):
        per_window = 12000.0 * days * k_share * c_share * h_share
        rate = k_rate * country_factor[country] * h_factor
        past_den = rng.poisson(per_window, size=4)
        den = rng.poisson(per_window)
        rows.append({
            "merchant_category": cat, "country": country, "channel": channel,
            "actual_num": rng.binomial(den, rate * wobble[cat]), "actual_den": den,
            "expected_num": rng.binomial(past_den, rate).mean(), "expected_den": past_den.mean(),
        })
    return pd.DataFrame(rows)


@pytest.mark.parametrize("seed, days", [(0, 1), (1, 1), (2, 5)])
def test_small_category_jump_beats_a_big_category_wobble(seed: int, days: int) -> None:
    """Demo: refund_rate 07-27 (one day, and five days). The answer is gift cards alone, not
    fashion: its +6 % is the normal day-to-day movement of a rate."""
    leaves = _refund_leaves(seed=seed, days=days)
    found = localize(leaves, ["merchant_category", "country", "channel"], "ratio")
    assert found == [{"merchant_category": "gift_cards"}]


def test_a_cause_covering_most_of_the_traffic_is_still_found() -> None:
    """One bitrate carries 80 % of the traffic and its stall rate triples. The leaf-level rate
    wobble is read from the quieter leaves; it must not be allowed to explain a x3 away."""
    rng = np.random.default_rng(7)
    rows = []
    for bitrate, region, p2p in itertools.product(["500", "1200", "2000"],
                                                  [f"r{i}" for i in range(12)], ["0", "1"]):
        per_minute = 4000 * (0.8 if bitrate == "500" else 0.1) / 24 * 3
        rate = 0.05 * float(rng.lognormal(0, 0.1))
        den0, den1 = rng.poisson(per_minute, 4), rng.poisson(per_minute)
        rows.append({
            "bitrate": bitrate, "region": region, "p2p": p2p,
            "expected_den": den0.mean(), "expected_num": rng.binomial(den0, rate).mean(),
            "actual_den": den1,
            "actual_num": rng.binomial(den1, rate * (3 if bitrate == "500" else 1)),
        })
    found = localize(pd.DataFrame(rows), ["bitrate", "region", "p2p"], "ratio")
    assert found == [{"bitrate": "500"}]


def _signups_by_leaf(seed: int) -> pd.DataFrame:
    """Fake signups by country x channel x device, ~1 a leaf; IN & web bursts x4."""
    rng = np.random.default_rng(seed)
    countries = [f"c{i}" for i in range(30)] + ["IN"]
    rows = []
    for country, channel, device in itertools.product(countries, ["web", "app"], ["android", "ios", "windows", "macos"]):
        mean = rng.uniform(0.2, 1.5) * (2 if country == "IN" else 1)
        baseline = rng.poisson(mean, 4).mean()  # the mean of the 4 weeks before
        actual = rng.poisson(mean * (4.0 if (country, channel) == ("IN", "web") else 1.0))
        rows.append((country, channel, device, float(actual), float(baseline)))
    return pd.DataFrame(rows, columns=["country", "channel", "device_os", "actual", "expected"])


def test_small_integer_counts_per_leaf_still_localise() -> None:
    """With about one event a leaf, many leaves equal their expected count exactly and a
    variance read from the lower quartile of squared residuals is near zero: every leaf looks
    "infinitely" anomalous and the search picks at random (4 of these 20 worlds were right).
    Counts are at least Poisson-noisy, and a leaf expected to see nothing has one event of
    noise; the burst is then found alone in most worlds (17 of 20; the others are small leaves
    whose noise happens to look like it)."""
    right = sum(localize(_signups_by_leaf(seed), ["country", "channel", "device_os"], "sum")
                == [{"country": "IN", "channel": "web"}] for seed in range(20))
    assert right >= 14, right


# -- thin data: the coarsest segment that explains the change --------------------------------


def _takeover_leaves(seed: int, sibling_logins: float, sibling_factor: float) -> pd.DataFrame:
    """Country x channel x account_age x device; BR & web is hit by an account-takeover wave.

    BR & web & 30d+ has plenty of logins and its rate goes x5; its siblings (BR & web & the
    other account ages) have ``sibling_logins`` logins per leaf and their rate goes
    x``sibling_factor``. Every other leaf has a few hundred logins and does not change.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for country, channel, age, device in itertools.product(
        ["BR", "US", "DE", "MX", "IN", "GB"], ["web", "app"], ["0-7d", "7-30d", "30d+"],
        ["ios", "android", "windows"],
    ):
        rate, factor, logins = 0.01, 1.0, 300.0
        if (country, channel) == ("BR", "web"):
            big = age == "30d+"
            factor = 5.0 if big else sibling_factor
            logins = 1000.0 if big else sibling_logins
        past = rng.poisson(logins, 4)
        den = rng.poisson(logins)
        rows.append({
            "country": country, "channel": channel, "account_age": age, "device": device,
            "expected_den": past.mean(), "expected_num": rng.binomial(past, rate).mean(),
            "actual_den": den, "actual_num": rng.binomial(den, min(rate * factor, 1.0)),
        })
    return pd.DataFrame(rows)


TAKEOVER_DIMS = ["country", "channel", "account_age", "device"]


@pytest.mark.parametrize("sibling_logins, sibling_factor", [(20.0, 5.0), (40.0, 3.0)])
def test_thin_siblings_hit_alike_give_the_parent(
    sibling_logins: float, sibling_factor: float
) -> None:
    """The other account ages of BR & web are hit too (x3 to x5) but have 20-40 logins a leaf:
    they cannot reject the x5 of the big leaf, so nothing supports the more specific segment.
    (Climbing only when the siblings' own move was significant named BR & web & 30d+ in 7 of
    these 20 worlds.)"""
    right = sum(
        localize(_takeover_leaves(seed, sibling_logins, sibling_factor), TAKEOVER_DIMS, "ratio")[:1]
        == [{"country": "BR", "channel": "web"}]
        for seed in range(10)
    )
    assert right >= 9, right


@pytest.mark.parametrize("seed", range(5))
def test_well_measured_unchanged_siblings_give_the_child(seed: int) -> None:
    """Same wave, but the other account ages have 1000 logins a leaf and did not move: the
    change is BR & web & 30d+ alone."""
    leaves = _takeover_leaves(seed=seed, sibling_logins=1000.0, sibling_factor=1.0)
    found = localize(leaves, TAKEOVER_DIMS, "ratio")
    assert found[:1] == [{"country": "BR", "channel": "web", "account_age": "30d+"}], found


def test_a_thin_segment_of_many_leaves_is_still_significant() -> None:
    """A segment of 48 leaves with ~0.3 expected events each goes x4 (about 15 -> 60 events):
    each leaf alone is noise, the segment is not. Each leaf's noise has a one-event floor,
    which must not add up over the segment's leaves."""
    rng = np.random.default_rng(3)
    rows = []
    for country, channel, age, device in itertools.product(
        [f"c{i}" for i in range(12)], ["web", "app", "api"], ["a", "b", "c", "d"],
        ["ios", "android", "windows", "macos"],
    ):
        rate = 0.01
        logins = 30.0
        factor = 4.0 if (channel, device) == ("api", "ios") else 1.0
        past = rng.poisson(logins, 4)
        den = rng.poisson(logins)
        rows.append({
            "country": country, "channel": channel, "account_age": age, "device": device,
            "expected_den": past.mean(), "expected_num": rng.binomial(past, rate).mean(),
            "actual_den": den, "actual_num": rng.binomial(den, rate * factor),
        })
    found = localize(pd.DataFrame(rows), TAKEOVER_DIMS, "ratio")
    assert found == [{"channel": "api", "device": "ios"}], found
