"""A trailing metric tested on the segment a leading metric's incident names (detect.follows)."""
from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from monitor.attribute.incident_attribution import attribute_incidents
from monitor.incident import unexplained
from monitor.catalog import load_catalog, parse_metric
from monitor.detect.follows import Lead, conditional_z, follow_lead, leads_for
from monitor.detect.run_detection import detect_metric
from monitor.engine import Window
from monitor.pipeline import detection_order
from monitor.store import Store

START = dt.datetime(2026, 1, 5)
DAYS, ATTACK_DAY, ATTACK_DAYS = 120, 100, 4
COUNTRIES = {"US": 0.5, "DE": 0.2, "GB": 0.2, "FR": 0.1}
DEVICES = {"android": 0.3, "ios": 0.7}
METHODS = {"card": 0.2, "paypal": 0.8}
ATTACKED = {"country": "GB", "device_os": "android", "payment_method": "card"}
FRAUD, CHARGEBACK_OF_FRAUD, FRIENDLY = 0.004, 0.5, 0.002
ORDERS_PER_DAY = 20000

HEADER = """/* ---
name: {name}
kind: ratio
grain: day
dimensions: [country, device_os, payment_method]
schedule: "0 6 * * *"
detect:
  direction: up
  min_volume: 500
  slice_min_volume: 200
{extra}--- */
SELECT ts, country, device_os, payment_method, numerator, denominator FROM t
WHERE ts >= $start AND ts < $end
"""


def world(seed: int, *, attack_factor: float = 10.0, chargeback_of_attack: float = 0.4, days: int = DAYS,
          attack_days: int = ATTACK_DAYS):
    """Leaves of (fraud_rate, chargeback_rate): per day and segment, orders, frauds and
    chargebacks. For ATTACK_DAYS from ATTACK_DAY the attacked segment's fraud probability
    is multiplied by ``attack_factor``; the extra frauds charge back with probability
    ``chargeback_of_attack`` (0: a fraud wave that never reaches chargebacks)."""
    rng = np.random.default_rng(seed)
    fraud_rows, cb_rows = [], []
    segments = [(c, d, m, wc * wd * wm) for c, wc in COUNTRIES.items() for d, wd in DEVICES.items()
                for m, wm in METHODS.items()]
    for day in range(days):
        ts = START + dt.timedelta(days=day)
        for c, d, m, share in segments:
            orders = rng.poisson(ORDERS_PER_DAY * share)
            attacked = (ATTACK_DAY <= day < ATTACK_DAY + attack_days
                        and (c, d, m) == tuple(ATTACKED.values()))
            frauds = rng.binomial(orders, FRAUD)
            extra = rng.binomial(orders, FRAUD * (attack_factor - 1)) if attacked else 0
            chargebacks = (rng.binomial(frauds, CHARGEBACK_OF_FRAUD) + rng.binomial(extra, chargeback_of_attack)
                           + rng.binomial(orders - frauds - extra, FRIENDLY))
            fraud_rows.append((ts, c, d, m, float(frauds + extra), float(orders)))
            cb_rows.append((ts, c, d, m, float(chargebacks), float(orders)))
    columns = ["ts", "country", "device_os", "payment_method", "numerator", "denominator"]
    return (pa.Table.from_pandas(pd.DataFrame(rows, columns=columns), preserve_index=False)
            for rows in (fraud_rows, cb_rows))


def build(tmp_path, seed: int, *, follows: bool = True, days: int = DAYS, detect: bool = True, **kw):
    fraud_table, cb_table = world(seed, days=days, **kw)
    tmp_path.mkdir(parents=True, exist_ok=True)
    fraud, problems = parse_metric(HEADER.format(name="fraud_rate", extra=""), tmp_path / "fraud_rate.sql")
    assert not problems
    extra = "  follows: [fraud_rate]\n" if follows else ""
    chargeback, problems = parse_metric(HEADER.format(name="chargeback_rate", extra=extra),
                                        tmp_path / "chargeback_rate.sql")
    assert not problems
    store = Store(tmp_path / "store.duckdb")
    window = Window(START, START + dt.timedelta(days=days))
    store.write_window(fraud, window, fraud_table, trigger="backfill", started_at=START)
    store.write_window(chargeback, window, cb_table, trigger="backfill", started_at=START)
    if detect:
        detect_both(store, fraud, chargeback, now=START + dt.timedelta(days=days))
    return store, fraud, chargeback


def detect_both(store, fraud, chargeback, *, now):
    """What a detection cycle does: the followed metric first, explained, then the follower."""
    detect_metric(store, fraud, now=now)
    attribute_incidents(store, fraud, unexplained(store, fraud.name))
    detect_metric(store, chargeback, now=now)


def incidents(store, metric):
    with store.connect(read_only=True) as con:
        return con.execute("SELECT * FROM incidents WHERE metric = ? ORDER BY start_ts", [metric]).df()


def near_attack(frame):
    lo = START + dt.timedelta(days=ATTACK_DAY - 3)
    hi = START + dt.timedelta(days=ATTACK_DAY + ATTACK_DAYS + 3)
    return frame[(frame["start_ts"] >= lo) & (frame["start_ts"] < hi)]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2, 6])
def test_a_fraud_wave_points_chargebacks_at_the_segment_the_slice_search_misses(tmp_path, seed):
    # seed 2: the fraud incident is on the total and its explanation names the segment;
    # seed 6: it is on a two-dimension slice, whose explanation adds the third dimension
    store, _, _ = build(tmp_path / "with", seed)
    found = near_attack(incidents(store, "chargeback_rate"))
    assert len(found) == 1, found[["slice", "start_ts"]]
    incident = found.iloc[0]
    assert json.loads(incident["slice_json"]) == ATTACKED
    assert abs((incident["start_ts"] - START).days - ATTACK_DAY) <= 1
    assert pd.isna(incident["parent_id"]), "nothing on chargeback_rate covers it: it pages on its own"
    assert incident["direction"] == "up" and incident["observed"] > 1.5 * incident["baseline"]
    why = json.loads(incident["why_json"])
    assert why["detector"] == "follows" and why["follows"]["metric"] == "fraud_rate"
    assert why["follows"]["incident_id"] in set(incidents(store, "fraud_rate")["incident_id"])
    assert incident["score"] >= why["threshold"] == 4.0
    # the control: the same data without `follows` raises nothing near the attack
    assert near_attack(incidents(build(tmp_path / "without", seed, follows=False)[0], "chargeback_rate")).empty


@pytest.mark.slow
def test_a_fraud_wave_that_never_reaches_chargebacks_raises_nothing_there(tmp_path):
    store, _, _ = build(tmp_path, 2, chargeback_of_attack=0.0)
    assert not near_attack(incidents(store, "fraud_rate")).empty, "the lead is there"
    assert incidents(store, "chargeback_rate").empty


@pytest.mark.slow
def test_an_ongoing_attack_keeps_one_open_incident_day_after_day(tmp_path):
    """Run daily through a long attack: one incident (same id), open while the attack goes
    on, never resolved and then reopened (which would page twice)."""
    store, fraud, chargeback = build(tmp_path, 2, days=ATTACK_DAY + 12, attack_days=30, detect=False)
    seen: dict[str, list[str]] = {}
    for day in (5, 7, 9, 11):
        detect_both(store, fraud, chargeback, now=START + dt.timedelta(days=ATTACK_DAY + day))
        for row in incidents(store, "chargeback_rate").itertuples():
            seen.setdefault(row.incident_id, []).append(row.status)
    assert len(seen) == 1, seen
    (statuses,) = seen.values()
    assert statuses == ["open"] * len(statuses), statuses


@pytest.mark.slow
def test_a_false_alarm_lead_withdraws_the_open_incident_it_pointed_at(tmp_path):
    store, fraud, chargeback = build(tmp_path, 2, days=ATTACK_DAY + 5, attack_days=30)  # the attack is still on
    now = START + dt.timedelta(days=ATTACK_DAY + 5)
    (incident,) = incidents(store, "chargeback_rate").itertuples()
    assert incident.status == "open" and json.loads(incident.why_json)["detector"] == "follows"
    detect_metric(store, chargeback, now=now)
    assert list(incidents(store, "chargeback_rate")["incident_id"]) == [incident.incident_id]  # a rerun: same one
    # the on-call says the fraud incidents were false alarms: nothing points here any more
    from monitor.dashboard.actions import set_label

    for incident_id in incidents(store, "fraud_rate")["incident_id"]:
        set_label(store, incident_id, "false_alarm", by="test", now=now)
    assert leads_for(store, chargeback, since=START) == []
    detect_metric(store, chargeback, now=now)
    after = incidents(store, "chargeback_rate").iloc[0]
    assert (after["status"], after["resolution"]) == ("resolved", "withdrawn")


def test_conditional_z_is_zero_at_the_baseline_rate_and_knows_a_small_baseline_is_uncertain():
    assert conditional_z(4, 28, 4.0, 28.0, 1.0) == 0.0
    assert conditional_z(12, 28, 4.0, 28.0, 1.0) > conditional_z(8, 28, 4.0, 28.0, 1.0) > 0
    assert conditional_z(0, 28, 4.0, 28.0, 1.0) < 0
    # the same rates from a baseline ten times smaller: less sure of the normal, lower score
    assert conditional_z(12, 2.8, 4.0, 2.8, 1.0) < conditional_z(12, 28, 4.0, 28.0, 1.0)
    # over-dispersion divides the evidence
    assert conditional_z(12, 28, 4.0, 28.0, 2.0) == pytest.approx(conditional_z(12, 28, 4.0, 28.0, 1.0) / 2 ** 0.5)


def _lead(day: int, direction: str = "up") -> Lead:
    return Lead("fraud_rate", "x", {"country": "GB"}, (START + dt.timedelta(days=day)), direction)


def _follow(count, volume, *, lead: Lead | None = None, allowed: str = "up", max_length: int = 14):
    """follow_lead on 100 days, the lead on day 80, a total without seasonality."""
    return follow_lead(lead or _lead(80), count, volume, pd.date_range(START, periods=100, freq="D"),
                       total=(np.ones(100), np.ones(100)), period=None, grain="day", threshold=4.0,
                       allowed=allowed, max_length=max_length)


def test_a_sparse_segment_without_a_change_rarely_confirms_a_lead():
    """Under no change, scanning 3 starts x 14 lengths at threshold 4 must stay rare even
    for a segment with about one event a day (where a normal approximation would not)."""
    rng = np.random.default_rng(0)
    volume = np.full(100, 300.0)
    fired = sum(_follow(rng.poisson(1.0, 100).astype(float), volume) is not None for _ in range(400))
    assert fired <= 4, fired  # 1 %; about 0.1 % is expected


def test_the_window_starts_within_a_bucket_of_the_lead_and_direction_is_honoured():
    rng = np.random.default_rng(1)
    count = rng.poisson(2.0, 100).astype(float)
    count[81:85] += 8  # the rise starts a day after the lead says
    volume = np.full(100, 500.0)
    found = _follow(count, volume)
    assert found is not None and found.start == 81 and found.end == 85
    assert _follow(count, volume, allowed="down") is None
    assert _follow(count, volume, lead=_lead(80, "down"), allowed="both") is None
    # a rise that starts a week after the lead is not what the lead points at
    late = rng.poisson(2.0, 100).astype(float)
    late[88:92] += 8
    assert _follow(late, volume, max_length=6) is None


def test_a_segment_that_never_had_an_event_can_still_confirm_a_lead():
    count = np.zeros(100)
    count[80:82] = 4  # 8 chargebacks in 2 days where the 4 weeks before had none
    found = _follow(count, np.full(100, 500.0))
    assert found is not None and (found.start, found.end) == (80, 82) and found.baseline == 0.0
    # one event is not enough
    count[81] = 0
    count[80] = 1
    assert _follow(count, np.full(100, 500.0)) is None


def _catalog(tmp_path, files: dict[str, str]):
    folder = tmp_path / "metrics"
    folder.mkdir()
    for name, extra in files.items():
        (folder / f"{name}.sql").write_text(HEADER.format(name=name, extra=extra))
    return load_catalog(folder)


def test_follows_must_name_other_metrics_of_the_catalog_without_cycles(tmp_path):
    catalog = _catalog(tmp_path, {"a": "  follows: [b]\n", "b": "  follows: [a]\n", "c": "  follows: [fraud_rte]\n",
                                  "d": "  follows: [d]\n", "e": "  follows: fraud_rate\n", "fraud_rate": ""})
    folder = tmp_path / "metrics"
    # flow style, and a description that mentions "follows:" first: the line is still detect's own
    (folder / "f.sql").write_text(HEADER.format(name="f", extra="").replace(
        "kind: ratio", "description: 'follows: anything'\nkind: ratio").replace(
        "detect:\n  direction: up\n  min_volume: 500\n  slice_min_volume: 200\n",
        "detect: {direction: up,\n  follows: [nope]}\n"))
    (folder / "g.sql").write_text(HEADER.format(name="g", extra="  follows: [fraud_rate]\n").replace(
        "kind: ratio", "kind: sum\nunit: currency").replace("numerator, denominator", "numerator AS value"))
    catalog = load_catalog(folder)
    text = "\n".join(map(str, catalog.problems))
    assert "c.sql:11: detect.follows: unknown metric 'fraud_rte' (did you mean 'fraud_rate'?)" in text
    assert "d.sql:11: detect.follows: 'd' is this metric itself" in text
    assert "a.sql:11: detect.follows makes a cycle (a -> b -> a)" in text
    assert "e.sql:11: detect.follows: must be a list of metric names" in text
    assert "f.sql:9: detect.follows: unknown metric 'nope'" in text
    assert "g.sql:12: detect.follows: needs a ratio metric or a count (unit: count)" in text
    # the files themselves are valid: every metric still runs, without the names that broke a rule
    assert {"a", "b", "c", "d", "f", "g", "fraud_rate"} <= set(catalog.metrics)
    assert all(catalog.metrics[m].detect.follows == () for m in ("a", "b", "c", "d", "f", "g"))


def test_a_metric_is_detected_after_the_metrics_it_follows(tmp_path):
    catalog = _catalog(tmp_path, {"chargeback_rate": "  follows: [fraud_rate]\n", "fraud_rate": "",
                                  "a": "  follows: [b]\n", "b": "  follows: [a]\n"})
    order = [m.name for m in detection_order(catalog.select(None))]
    assert order.index("fraud_rate") < order.index("chargeback_rate")
    assert sorted(order) == ["a", "b", "chargeback_rate", "fraud_rate"]  # a cycle is cut, nothing lost


SUM_HEADER = """/* ---
name: chargebacks
kind: sum
unit: count
grain: day
dimensions: [country, device_os, payment_method]
schedule: "0 6 * * *"
detect:
  direction: up
  min_volume: 20
  slice_min_volume: 5
{extra}--- */
SELECT ts, country, device_os, payment_method, value FROM t
WHERE ts >= $start AND ts < $end
"""
WEEKLY = (1.0, 1.0, 1.0, 1.0, 1.0, 0.3, 0.3)  # Monday..Sunday: weekends at 0.3x
WEEKDAY_CHARGEBACKS = 40.0  # the attacked segment's mean count on a weekday
SUM_RISE, SUM_RISE_DAYS = 0.6, 3  # +60 % on ATTACK_DAY.. (Wednesday to Friday)


def weekly_chargebacks(seed: int) -> pa.Table:
    """Chargeback counts (a sum metric) per day and segment, every segment with the WEEKLY
    shape (so the total has it too), the attacked one SUM_RISE higher for SUM_RISE_DAYS."""
    rng = np.random.default_rng(seed)
    attacked_share = COUNTRIES["GB"] * DEVICES["android"] * METHODS["card"]
    rows = []
    for day in range(DAYS):
        ts = START + dt.timedelta(days=day)
        for c, wc in COUNTRIES.items():
            for d, wd in DEVICES.items():
                for m, wm in METHODS.items():
                    mean = WEEKDAY_CHARGEBACKS * wc * wd * wm / attacked_share * WEEKLY[ts.weekday()]
                    if (c, d, m) == tuple(ATTACKED.values()) and ATTACK_DAY <= day < ATTACK_DAY + SUM_RISE_DAYS:
                        mean *= 1 + SUM_RISE
                    rows.append((ts, c, d, m, float(rng.poisson(mean))))
    frame = pd.DataFrame(rows, columns=["ts", "country", "device_os", "payment_method", "value"])
    return pa.Table.from_pandas(frame, preserve_index=False)


def build_sum_follower(tmp_path, seed: int, *, follows: bool = True):
    """fraud_rate as in ``build`` (its wave on the attacked segment leads), followed by the
    sum metric ``chargebacks``; both detected as a cycle would. Returns the store and the
    chargeback leaves."""
    fraud_table, _ = world(seed)
    chargeback_table = weekly_chargebacks(seed + 1000)
    tmp_path.mkdir(parents=True, exist_ok=True)
    fraud, problems = parse_metric(HEADER.format(name="fraud_rate", extra=""), tmp_path / "fraud_rate.sql")
    assert not problems
    extra = "  follows: [fraud_rate]\n" if follows else ""
    chargebacks, problems = parse_metric(SUM_HEADER.format(extra=extra), tmp_path / "chargebacks.sql")
    assert not problems and chargebacks.kind == "sum"
    store = Store(tmp_path / "store.duckdb")
    window = Window(START, START + dt.timedelta(days=DAYS))
    store.write_window(fraud, window, fraud_table, trigger="backfill", started_at=START)
    store.write_window(chargebacks, window, chargeback_table, trigger="backfill", started_at=START)
    detect_both(store, fraud, chargebacks, now=START + dt.timedelta(days=DAYS))
    return store, chargeback_table.to_pandas()


def test_a_sum_follower_with_a_weekly_shape_is_judged_against_the_weekday_level(tmp_path):
    """A sum follower's expected counts follow its total's weekday shape (the total's values
    with volume 1). A flat shape, as an earlier bug passed for sums, expects the weekly mean
    (0.8x a weekday) on a weekday rise and reads the weekly swing as over-dispersion (about
    6): this rise of +60 % over Wednesday-Friday then scores below the threshold."""
    assert (START + dt.timedelta(days=ATTACK_DAY)).weekday() == 2  # a Wednesday: high-volume days
    store, leaves = build_sum_follower(tmp_path / "with", 2)
    found = near_attack(incidents(store, "chargebacks"))
    assert len(found) == 1, found[["slice", "start_ts"]]
    incident = found.iloc[0]
    why = json.loads(incident["why_json"])
    assert why["detector"] == "follows" and why["follows"]["metric"] == "fraud_rate"
    assert json.loads(incident["slice_json"]) == ATTACKED
    assert abs((incident["start_ts"] - START).days - ATTACK_DAY) <= 1
    assert incident["direction"] == "up" and incident["score"] >= why["threshold"]
    # the expectation is the segment's own weekday / weekend mean over the four weeks before,
    # day by day over the window (a flat shape gives the mean over all days: on a Wednesday
    # to Friday window about 0.8x)
    segment = leaves[(leaves[list(ATTACKED)] == pd.Series(ATTACKED)).all(axis=1)].set_index("ts")["value"]
    before = segment[START + dt.timedelta(days=ATTACK_DAY - 29): START + dt.timedelta(days=ATTACK_DAY - 2)]
    level = {weekend: before[(before.index.weekday >= 5) == weekend].mean() for weekend in (False, True)}
    window = pd.date_range(incident["start_ts"], periods=why["window_buckets"], freq="D")
    expected = sum(level[day.weekday() >= 5] for day in window)
    assert why["expected_count"] == pytest.approx(expected, rel=0.05), (expected, why)
    assert incident["baseline"] == pytest.approx(expected / len(window), rel=0.05)
    assert why["dispersion"] < 1.5, why  # Poisson data once the weekly shape is accounted for
    # the control: without `follows` the slice search alone finds nothing near the attack
    assert near_attack(incidents(build_sum_follower(tmp_path / "without", 2, follows=False)[0], "chargebacks")).empty
