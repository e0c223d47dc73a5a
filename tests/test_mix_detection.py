"""Traffic-mix early warning: a ratio total judged by what its traffic mix implies."""
from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from monitor.attribute.incident_attribution import attribute_incidents
from monitor.incident import unexplained
from monitor.catalog import parse_metric
from monitor.detect.mix import MIN_EFFECT, mix_runs, mix_series
from monitor.detect.run_detection import detect_metric
from monitor.detect.series import detect_series
from monitor.engine import Window
from monitor.store import Store

COUNTRIES = ["US", "DE", "BR", "NG"]
RATES = np.array([0.02, 0.02, 0.03, 0.10])  # NG is the risky country
SHARES = np.array([0.50, 0.25, 0.20, 0.05])
WEEK = np.array([1.0, 1.05, 1.1, 1.0, 0.95, 0.7, 0.6])
DAYS, MIX_DAY = 120, 70
THRESHOLD = 5.2  # a daily total's 4 sd, widened for 4 dimensions as the product does


def mix_world(seed: int, *, volume: float = 4000.0, risky_share_after: float | None = 0.10, until: int = 77,
              surge: float = 1.0, days: int = DAYS):
    """(numerators, denominators), each countries x days. From MIX_DAY until ``until`` NG's
    share of orders becomes ``risky_share_after`` (others shrink in proportion); no country's
    rate changes. ``surge`` multiplies every country's volume over the same days instead."""
    rng = np.random.default_rng(seed)
    num, den = np.zeros((4, days)), np.zeros((4, days))
    for day in range(days):
        shares, scale = SHARES, 1.0
        if MIX_DAY <= day < until:
            scale = surge
            if risky_share_after is not None:
                shares = SHARES * (1 - risky_share_after) / (1 - SHARES[3])
                shares[3] = risky_share_after
        orders = rng.poisson(volume * WEEK[day % 7] * scale)
        den[:, day] = rng.multinomial(orders, shares)
        num[:, day] = rng.binomial(den[:, day].astype(np.int64), RATES)
    return num, den


def runs_of(num, den, *, direction="both", accept_after=14, threshold=THRESHOLD):
    mix = mix_series("country", COUNTRIES, num, den, period=7)
    return mix, mix_runs([mix], threshold=threshold, direction=direction, accept_after=accept_after)


def test_a_mix_shift_is_flagged_on_its_first_day_while_the_total_barely_moves():
    num, den = mix_world(seed=1)
    _, runs = runs_of(num, den)
    assert len(runs) == 1, runs
    run = runs[0]
    assert (run.start, run.end, run.direction) == (MIX_DAY, 77, "up")
    assert 0.10 < run.effect < 0.20  # NG 5 % -> 10 % of orders at 5x the others' rate: +15 %
    top = run.evidence["segments"][0]
    assert top["value"] == "NG" and abs(top["share"] - 0.10) < 0.01 and abs(top["baseline_share"] - 0.05) < 0.01
    # the reason this detector exists: the total's own first-day move is inside its noise
    total = detect_series(num.sum(0), denominators=den.sum(0), period=7)
    assert abs(total.score[MIX_DAY]) < 4
    assert not any(seg.start == MIX_DAY for seg in total.segments)


def test_a_stable_mix_raises_nothing():
    for seed in range(20):
        num, den = mix_world(seed=100 + seed, risky_share_after=None)
        mix, runs = runs_of(num, den)
        assert runs == [], (seed, runs)
        assert np.isfinite(mix.z[40:]).all()  # judged from the sixth week on


def test_a_volume_surge_of_every_segment_is_not_a_mix_shift():
    num, den = mix_world(seed=2, risky_share_after=None, surge=3.0)
    assert runs_of(num, den)[1] == []


def test_a_precise_but_small_mix_move_is_not_paged():
    # 2 M orders a day measure a 5 % -> 5.5 % share move very precisely (z far above the
    # threshold), but it moves the expected rate by ~1.5 %: below MIN_EFFECT
    num, den = mix_world(seed=3, volume=2_000_000.0, risky_share_after=0.055)
    mix, runs = runs_of(num, den)
    assert np.nanmax(mix.z[MIX_DAY:77]) > 2 * THRESHOLD
    assert np.nanmax(mix.effect[MIX_DAY:77]) < MIN_EFFECT
    assert runs == []


def test_direction_is_honoured():
    num, den = mix_world(seed=1)
    assert runs_of(num, den, direction="down")[1] == []
    assert len(runs_of(num, den, direction="up")[1]) == 1


def test_a_persisting_mix_is_accepted_as_the_new_normal():
    num, den = mix_world(seed=4, until=DAYS)
    _, runs = runs_of(num, den, accept_after=10)
    assert [(r.start, r.end, r.accepted) for r in runs] == [(MIX_DAY, MIX_DAY + 10, True)]


# ----------------------------------------------------------------------------- over a real store
METRIC = """\
/* ---
name: fraud_rate
kind: ratio
grain: day
dimensions: [country, channel]
schedule: "0 6 * * *"
detect:
  direction: up
--- */
SELECT ts, country, channel, numerator, denominator FROM t WHERE ts >= $start AND ts < $end
"""
START = dt.datetime(2026, 1, 5)


def test_a_mix_shift_becomes_one_total_incident_explained_as_mix(tmp_path):
    num, den = mix_world(seed=5)
    rng = np.random.default_rng(0)
    rows = []
    for day in range(DAYS):
        for c, country in enumerate(COUNTRIES):
            # split each country's orders over two channels with the same rate
            web = rng.binomial(int(den[c, day]), 0.6)
            web_frauds = rng.hypergeometric(int(num[c, day]), int(den[c, day] - num[c, day]), web) if web else 0
            ts = START + dt.timedelta(days=day)
            rows.append((ts, country, "web", float(web_frauds), float(web)))
            rows.append((ts, country, "app", float(num[c, day] - web_frauds), float(den[c, day] - web)))
    table = pa.Table.from_pandas(pd.DataFrame(rows, columns=["ts", "country", "channel", "numerator", "denominator"]),
                                 preserve_index=False)
    metric, problems = parse_metric(METRIC, tmp_path / "fraud_rate.sql")
    assert not problems
    store = Store(tmp_path / "store.duckdb")
    store.write_window(metric, Window(START, START + dt.timedelta(days=DAYS)), table, trigger="backfill",
                       started_at=START)
    detect_metric(store, metric, now=START + dt.timedelta(days=DAYS))
    with store.connect(read_only=True) as con:
        found = con.execute("SELECT * FROM incidents WHERE slice = '' ORDER BY start_ts").df()
    assert len(found) == 1, found[["start_ts", "kind"]]
    incident = found.iloc[0]
    assert incident["start_ts"] == START + dt.timedelta(days=MIX_DAY)
    assert incident["kind"] == "mix_shift" and incident["direction"] == "up"
    assert incident["observed"] > incident["baseline"]
    # the total's baseline did not learn the mix during the run: the incident shows the move
    # (NG 5 % -> 10 % of orders: about +15 %), not what is left after a week of adapting
    assert incident["relative_change"] > 0.10, incident["relative_change"]
    why = json.loads(incident["why_json"])
    assert why["mix"]["dimension"] == "country" and why["mix"]["segments"][0]["value"] == "NG"
    assert why["mix"]["implied_relative_change"] > MIN_EFFECT
    attribute_incidents(store, metric, unexplained(store, metric.name))
    with store.connect(read_only=True) as con:
        explanation = json.loads(con.execute("SELECT explanation_json FROM incidents WHERE incident_id = ?",
                                             [incident["incident_id"]]).fetchone()[0])
    assert explanation["verdict"] == "mix"


def _segment(start, end, kind="level_shift", direction="up"):
    from monitor.detect.results import AnomalySegment

    return AnomalySegment(start=start, end=end, direction=direction, kind=kind, baseline=0.01, observed=0.012,
                          relative_change=0.2, score=6.0, accepted=False, accepted_at=None)


def test_a_mix_run_extends_the_total_segment_it_leads_and_stands_alone_when_it_comes_late():
    from monitor.detect.mix import MixRun, merge_runs

    run = MixRun(start=70, end=77, direction="up", score=9.0, effect=0.15, accepted=False,
                 evidence={"dimension": "country"})
    observed, expected, volume = np.full(120, 0.012), np.full(120, 0.01), np.full(120, 1000.0)

    def merged(segments):
        return merge_runs(segments, [run], observed=observed, expected=expected, volume=volume)

    # the total's own detector confirms the move 3 days in: one episode, from the mix's first day
    [one] = merged([_segment(73, 80)])
    assert (one.start, one.end, one.kind, one.score) == (70, 80, "level_shift", 9.0)
    assert one.why["mix"]["dimension"] == "country"
    # the total has been up since day 60: the mix move is a new incident of its own
    late = merged([_segment(60, 80)])
    assert [(s.start, s.kind) for s in late] == [(60, "level_shift"), (70, "mix_shift")]
    # a segment in the other direction is a different episode
    assert [s.kind for s in merged([_segment(71, 75, direction="down")])] == ["mix_shift", "level_shift"]
    # nothing else running: the mix run is the incident, with the total's baseline and observation
    [alone] = merged([])
    assert (alone.start, alone.end, alone.kind) == (70, 77, "mix_shift")
    assert alone.relative_change == pytest.approx(0.2)


def test_the_mix_test_in_chunks_of_values_equals_one_pass():
    """A dimension of many values goes through in chunks (bounded memory): same effect,
    noise and evidence as all values at once, up to summation order."""
    from monitor.detect.mix import _evidence, mix_series

    rng = np.random.default_rng(3)
    k, n = 23, 120
    den = rng.poisson(rng.uniform(20, 400, (k, 1)) * np.ones((1, n))).astype(float)
    den[4, 90:] *= 3  # one value's share moves
    num = rng.binomial(den.astype(int), np.linspace(0.005, 0.05, k)[:, None]).astype(float)
    names = [f"v{i}" for i in range(k)]
    whole = mix_series("d", names, num, den, period=7)
    chunked = mix_series("d", names, list(num), list(den), period=7, chunk_rows=5)
    assert np.isfinite(whole.z).sum() > 50
    np.testing.assert_allclose(chunked.effect, whole.effect, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(chunked.z, whole.z, rtol=1e-9, atol=1e-12)
    idx = np.arange(90, 94)
    assert _evidence(chunked, idx)["segments"][0]["value"] == "v4"
    for a, b in zip(_evidence(whole, idx)["segments"], _evidence(chunked, idx)["segments"]):
        assert a["value"] == b["value"] and abs(a["share"] - b["share"]) < 1e-12


def test_the_lag_median_equals_numpys_nanmedian():
    import warnings

    from monitor.detect.mix import _nanmedian_first_axis

    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 200, 30))
    x[rng.random(x.shape) < 0.4] = np.nan  # every count of finite lags, 0 to 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanmedian(x, axis=0)
    np.testing.assert_array_equal(_nanmedian_first_axis(x), expected)


@pytest.mark.parametrize("lags", [1, 2, 3, 4, 5, 8, 9])
def test_the_lag_sort_equals_numpys_sort(lags):
    """The min/max network that sorts a short first axis (mix._sort_first_axis) orders as
    np.sort does, NaN last, with infinities and ties among the values."""
    from monitor.detect.mix import _sort_first_axis

    rng = np.random.default_rng(lags)
    x = rng.integers(-3, 4, size=(lags, 300, 20)).astype(float)  # ties
    x[rng.random(x.shape) < 0.3] = np.nan
    x[rng.random(x.shape) < 0.05] = np.inf
    x[rng.random(x.shape) < 0.05] = -np.inf
    np.testing.assert_array_equal(_sort_first_axis(x), np.sort(x, axis=0))
