"""Detection and attribution over a real store: incidents, slices linked under totals, explanations."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from monitor.attribute.incident_attribution import attribute_incidents, incident_leaves
from monitor.incident import unexplained
from monitor.catalog import parse_metric
from monitor.detect.run_detection import detect_metric
from monitor.engine import Window
from monitor.store import Store

import pyarrow as pa

METRIC = """\
/* ---
name: decline_rate
kind: ratio
grain: day
dimensions: [country, method]
schedule: "0 6 * * *"
severity: high
--- */
SELECT ts, country, method, numerator, denominator FROM t WHERE ts >= $start AND ts < $end
"""
START = dt.datetime(2026, 1, 5)  # a Monday
DAYS = 84
ATTACK_DAY = 70


def leaves(seed: int = 3, attack: bool = True) -> pa.Table:
    """3 countries x 3 methods, weekly pattern, binomial noise; BR&card rate x4 from ATTACK_DAY."""
    rng = np.random.default_rng(seed)
    rows = []
    for day in range(DAYS):
        weekly = 1.3 if (START + dt.timedelta(days=day)).weekday() >= 5 else 1.0
        for country, volume in (("US", 4000), ("BR", 1500), ("DE", 2000)):
            for method, share in (("card", 0.5), ("paypal", 0.3), ("bnpl", 0.2)):
                den = rng.poisson(volume * share * weekly)
                rate = 0.05
                if attack and country == "BR" and method == "card" and day >= ATTACK_DAY:
                    rate = 0.20
                rows.append((START + dt.timedelta(days=day), country, method, float(rng.binomial(den, rate)), float(den)))
    frame = pd.DataFrame(rows, columns=["ts", "country", "method", "numerator", "denominator"])
    return pa.Table.from_pandas(frame, preserve_index=False)


@pytest.fixture
def filled_store(tmp_path: Path):
    metric, problems = parse_metric(METRIC, tmp_path / "decline_rate.sql")
    assert not problems
    store = Store(tmp_path / "store.duckdb")
    store.write_window(metric, Window(START, START + dt.timedelta(days=DAYS)), leaves(),
                       trigger="backfill", started_at=START)
    return store, metric


def incidents(store: Store) -> pd.DataFrame:
    with store.connect(read_only=True) as con:
        return con.execute("SELECT * FROM incidents ORDER BY start_ts, slice").df()


def test_attack_in_one_segment_is_found_linked_and_explained(filled_store):
    store, metric = filled_store
    now = START + dt.timedelta(days=DAYS)
    result = detect_metric(store, metric, now=now)
    assert result.series_checked == 1 + 6 + 9 + 0 or result.series_checked >= 7
    found = incidents(store)
    attack_start = START + dt.timedelta(days=ATTACK_DAY)
    total = found[(found["slice"] == "") & (found["direction"] == "up")]
    assert not total.empty, found[["slice", "start_ts"]]
    first = total.iloc[0]
    assert abs((first["start_ts"] - attack_start).days) <= 1
    assert first["status"] == "open" and first["severity"] == "high"
    why = json.loads(first["why_json"])
    assert why["detector"] and "threshold" in json.dumps(why)
    br_card = found[found["slice"] == "country=BR&method=card"]
    assert not br_card.empty and br_card.iloc[0]["parent_id"] == first["incident_id"]
    # Nothing fires before the attack: the weekly pattern and binomial noise are not incidents.
    assert (found["start_ts"] < attack_start - dt.timedelta(days=1)).sum() == 0

    assert attribute_incidents(store, metric, unexplained(store, metric.name)) == len(found)
    explained = incidents(store).set_index("incident_id").loc[first["incident_id"]]
    explanation = json.loads(explained["explanation_json"])
    assert explanation["causes"][0]["segment"] == {"country": "BR", "method": "card"}
    assert explanation["verdict"] == "rate"
    assert "mean of the 4 weeks before" in explanation["baseline_label"]


def test_redetection_is_idempotent_and_keeps_human_fields(filled_store):
    store, metric = filled_store
    now = START + dt.timedelta(days=DAYS)
    detect_metric(store, metric, now=now)
    attribute_incidents(store, metric, unexplained(store, metric.name))
    first = incidents(store)
    with store.connect() as con:
        con.execute("UPDATE incidents SET label = 'true_positive', acked_by = 'ana' WHERE slice = ''")
    detect_metric(store, metric, now=now)
    again = incidents(store)
    assert list(again["incident_id"]) == list(first["incident_id"])
    assert set(again.loc[again["slice"] == "", "label"]) == {"true_positive"}
    assert again["explanation_json"].notna().all()  # unchanged incidents keep their explanation


def test_clean_history_raises_nothing(tmp_path):
    metric, _ = parse_metric(METRIC, tmp_path / "decline_rate.sql")
    store = Store(tmp_path / "store.duckdb")
    store.write_window(metric, Window(START, START + dt.timedelta(days=DAYS)), leaves(seed=11, attack=False),
                       trigger="backfill", started_at=START)
    detect_metric(store, metric, now=START + dt.timedelta(days=DAYS))
    assert incidents(store).empty
    with store.connect(read_only=True) as con:
        rows = con.execute("SELECT count(*), count(DISTINCT slice) FROM expectations").fetchone()
    assert rows == (DAYS * 7, 7)  # total + 6 one-dimension slices, every day


def test_incident_leaves_use_the_same_weekdays_of_the_four_weeks_before(filled_store):
    store, metric = filled_store
    start = START + dt.timedelta(days=ATTACK_DAY)
    frame, dims = incident_leaves(store, metric, start=start, end=start + dt.timedelta(days=2),
                                  segment={"country": "BR"})
    assert dims == ["method"]
    assert list(frame.columns) == ["method", "actual_num", "actual_den", "expected_num", "expected_den"]
    with store.connect(read_only=True) as con:
        weeks = [(start - dt.timedelta(days=7 * k), start - dt.timedelta(days=7 * k - 2)) for k in range(1, 5)]
        expected_den = sum(con.execute(
            "SELECT sum(denominator) FROM leaves__decline_rate WHERE country='BR' AND method='card' AND ts >= ? AND ts < ?",
            list(w)).fetchone()[0] for w in weeks) / 4
    card = frame.set_index("method").loc["card"]
    assert card["expected_den"] == pytest.approx(expected_den)


def test_incident_leaves_average_over_the_weeks_the_segment_has_rows(filled_store):
    """Early history: two weeks before the window hold data, and the segment has no row in the
    nearer one, so its baseline is that one week's, not a quarter or a half of it."""
    store, metric = filled_store
    start = START + dt.timedelta(days=15)
    near = (start - dt.timedelta(days=7), start - dt.timedelta(days=5))
    far = (start - dt.timedelta(days=14), start - dt.timedelta(days=12))
    with store.connect() as con:
        con.execute("DELETE FROM leaves__decline_rate WHERE country = 'BR' AND ts >= ? AND ts < ?", list(near))
        far_den = con.execute("SELECT sum(denominator) FROM leaves__decline_rate WHERE country = 'BR'"
                              " AND method = 'card' AND ts >= ? AND ts < ?", list(far)).fetchone()[0]
        both_den = sum(con.execute("SELECT sum(denominator) FROM leaves__decline_rate WHERE country = 'DE'"
                                   " AND method = 'card' AND ts >= ? AND ts < ?", list(w)).fetchone()[0] for w in (near, far))
    frame, _ = incident_leaves(store, metric, start=start, end=start + dt.timedelta(days=2), segment={"country": "BR"})
    assert frame.set_index("method").loc["card", "expected_den"] == pytest.approx(far_den)  # 1 week with rows
    frame, _ = incident_leaves(store, metric, start=start, end=start + dt.timedelta(days=2), segment={})
    card = frame.set_index(["country", "method"]).loc[("DE", "card")]
    assert card["expected_den"] == pytest.approx(both_den / 2)  # the total has rows in both weeks


def test_a_pair_slice_identical_to_its_parent_is_not_judged_twice(tmp_path):
    """PayPal payments never have a card BIN: 'bin=none & method=paypal' is just 'method=paypal'."""
    text = METRIC.replace("dimensions: [country, method]", "dimensions: [bin, method]").replace(
        "country, method", "bin, method")
    metric, problems = parse_metric(text, tmp_path / "decline_rate.sql")
    assert not problems
    rows = []
    for day in range(28):
        ts = START + dt.timedelta(days=day)
        rows += [(ts, "none", "paypal", 5.0, 100.0), (ts, "4147", "card", 7.0, 200.0),
                 (ts, "5425", "card", 6.0, 150.0), (ts, "none", "bank", 1.0, 50.0)]
    table = pa.Table.from_pandas(pd.DataFrame(rows, columns=["ts", "bin", "method", "numerator", "denominator"]),
                                 preserve_index=False)
    store = Store(tmp_path / "store.duckdb")
    store.write_window(metric, Window(START, START + dt.timedelta(days=28)), table, trigger="backfill", started_at=START)
    from monitor.detect.run_detection import load_slices

    _, series = load_slices(store, metric, end=START + dt.timedelta(days=28))
    labels = {s.label for s in series}
    assert "method=paypal" in labels and "bin=none" in labels
    assert "bin=none&method=paypal" not in labels and "bin=4147&method=card" not in labels
    assert "bin=none&method=bank" not in labels  # bank is always bin=none too


def test_pair_slice_incidents_sit_under_their_single_slice_incident_when_no_total_fires():
    from monitor.detect.run_detection import _link_parents

    day = dt.datetime(2026, 7, 27)

    def row(slice_: str, start: dt.datetime, direction: str = "up") -> dict:
        segment = dict(p.split("=") for p in slice_.split("&")) if slice_ else {}
        return {"incident_id": slice_ or "total", "slice": slice_, "slice_json": json.dumps(segment),
                "start_ts": start, "end_ts": day + dt.timedelta(days=5), "direction": direction, "parent_id": None}

    rows = [row("merchant_category=gift_cards", day),
            row("country=US&merchant_category=gift_cards", day - dt.timedelta(days=2)),
            row("channel=web&merchant_category=gift_cards", day, direction="down"),
            row("channel=web&country=US", day)]
    _link_parents(rows, dt.timedelta(days=1))
    parents = {r["slice"]: r["parent_id"] for r in rows}
    assert parents == {"merchant_category=gift_cards": None,
                       "country=US&merchant_category=gift_cards": "merchant_category=gift_cards",
                       "channel=web&merchant_category=gift_cards": None,  # the other direction
                       "channel=web&country=US": None}  # lies in no flagged single slice
    rows.append(row("", day))
    _link_parents(rows, dt.timedelta(days=1))
    assert {r["parent_id"] for r in rows if r["slice"] and r["direction"] == "up"} == {"total"}


def test_inside_a_slice_a_ratio_cause_must_move_more_than_the_rest_of_the_slice():
    """Every channel of gift_cards moved alike: web only restates 'gift_cards'. When only web
    moved, web is the cause, even though it is most of the slice's traffic."""
    from monitor.attribute.explain import RootCause
    from monitor.attribute.incident_attribution import _specific

    web = RootCause(segment={"channel": "web"}, explained_share=0.5, size=0.46, before=0.015, after=0.05)

    def leaves(web_after: int, rest_after: int) -> pd.DataFrame:
        return pd.DataFrame({"channel": ["web", "app", "marketplace"],
                             "actual_num": [web_after, rest_after, rest_after // 3],
                             "actual_den": [4600.0, 4000.0, 1400.0],
                             "expected_num": [69.0, 60.0, 21.0], "expected_den": [4600.0, 4000.0, 1400.0]})

    assert not _specific(web, leaves(230, 200), change=0.035)  # 1.5 % -> 5 % everywhere
    assert _specific(web, leaves(230, 60), change=0.02)  # only web moved
    assert _specific(web, leaves(230, 66), change=0.02)  # the rest: a few events up, within noise
