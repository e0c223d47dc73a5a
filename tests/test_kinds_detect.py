"""The mean and distribution kinds over a real store: exact re-aggregation of slices, tiny
volumes stay quiet, a known shift is found in its segment and attributed to it."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from monitor.attribute.incident_attribution import attribute_incidents
from monitor.incident import unexplained
from monitor.catalog import parse_metric
from monitor.detect.distribution import detect_distributions
from monitor.detect.distribution_slices import build_histograms
from monitor.detect.mean import detect_means
from monitor.detect.options import DetectOptions
from monitor.detect.run_detection import detect_metric
from monitor.detect.slices import build_slices
from monitor.engine import Window
from monitor.store import Store

MEAN = """\
/* ---
name: order_value
kind: mean
unit: currency
grain: day
dimensions: [country, channel]
schedule: "0 6 * * *"
--- */
SELECT ts, country, channel, value_sum, value_count, value_sq_sum FROM t WHERE ts >= $start AND ts < $end
"""
DIST = """\
/* ---
name: score
kind: distribution
grain: day
dimensions: [country, channel]
schedule: "0 6 * * *"
--- */
SELECT ts, country, channel, bucket, count FROM t WHERE ts >= $start AND ts < $end
"""
START = dt.datetime(2026, 1, 5)
DAYS = 84
EVENT = 70
COUNTRIES = (("US", 3000), ("BR", 1200), ("DE", 1500))
CHANNELS = (("web", 0.6), ("app", 0.4))
EDGES = np.round(np.linspace(0, 1, 21), 2)


def _orders(seed: int, *, shift_mean: bool, shift_scores: bool, scale: float = 1.0) -> pd.DataFrame:
    """One row per order (value, score); from EVENT, BR&app orders are worth 25 % more
    and/or score higher."""
    rng = np.random.default_rng(seed)
    parts = []
    for day in range(DAYS):
        for country, volume in COUNTRIES:
            for channel, share in CHANNELS:
                n = rng.poisson(volume * share * scale)
                hit = country == "BR" and channel == "app" and day >= EVENT
                value = 60.0 * rng.lognormal(-0.18, 0.6, n) * (1.25 if hit and shift_mean else 1.0)
                score = rng.beta(2, 8, n)
                if hit and shift_scores:
                    score = np.where(rng.random(n) < 0.3, rng.beta(8, 2, n), score)
                parts.append(pd.DataFrame({"ts": START + dt.timedelta(days=day), "country": country,
                                           "channel": channel, "value": value, "score": score}))
    return pd.concat(parts, ignore_index=True)


def _store(tmp_path: Path, text: str, orders: pd.DataFrame):
    metric, problems = parse_metric(text, tmp_path / f"{text.split('name: ')[1].split()[0]}.sql")
    assert not problems, problems
    con = duckdb.connect()
    con.register("o", orders)
    if metric.kind == "mean":
        sql = ("SELECT ts, country, channel, sum(value) AS value_sum, count(*)::DOUBLE AS value_count,"
               " sum(value * value) AS value_sq_sum FROM o GROUP BY ALL")
    else:
        sql = ("SELECT ts, country, channel, (floor(score * 20) / 20)::VARCHAR AS bucket, count(*)::DOUBLE AS count"
               " FROM o GROUP BY ALL")
    table = con.execute(sql).arrow()
    table = table.read_all() if isinstance(table, pa.RecordBatchReader) else table
    store = Store(tmp_path / "store.duckdb")
    store.write_window(metric, Window(START, START + dt.timedelta(days=DAYS)), table, trigger="backfill",
                       started_at=START)
    return store, metric


def test_mean_slices_re_aggregate_exactly(tmp_path: Path) -> None:
    orders = _orders(1, shift_mean=False, shift_scores=False, scale=0.05)
    store, metric = _store(tmp_path, MEAN, orders)
    with store.connect(read_only=True) as con:
        axis, series = build_slices(con, metric, start=START, end=START + dt.timedelta(days=DAYS),
                                    step=dt.timedelta(days=1))
    truth = orders.assign(sq=orders.value ** 2)
    for s in series:
        part = truth
        for k, v in s.segment.items():
            part = part[part[k] == v]
        day = part.groupby("ts").agg(total=("value", "sum"), n=("value", "size")).reindex(axis, fill_value=0)
        np.testing.assert_allclose(s.values, day["total"].to_numpy(), rtol=1e-9)
        np.testing.assert_allclose(s.volume, day["n"].to_numpy())
        ok = day["n"].to_numpy() > 0
        np.testing.assert_allclose(s.values[ok] / s.volume[ok], part.groupby("ts")["value"].mean().to_numpy(), rtol=1e-9)


def test_distribution_slices_re_aggregate_exactly(tmp_path: Path) -> None:
    orders = _orders(2, shift_mean=False, shift_scores=False, scale=0.05)
    store, metric = _store(tmp_path, DIST, orders)
    with store.connect(read_only=True) as con:
        axis, series, counts, labels = build_histograms(con, metric, start=START, end=START + dt.timedelta(days=DAYS),
                                                        step=dt.timedelta(days=1))
    assert [float(x) for x in labels] == sorted(float(x) for x in labels)
    bins = (np.floor(orders.score * 20) / 20).map(lambda x: str(x))
    orders = orders.assign(bin=bins.map(lambda b: labels.index(str(float(b))) if str(float(b)) in labels else -1))
    assert (orders.bin >= 0).all()
    for s, hist in zip(series, counts):
        part = orders
        for k, v in s.segment.items():
            part = part[part[k] == v]
        truth = np.zeros_like(hist)
        np.add.at(truth, ((part.ts - START).dt.days.to_numpy(), part.bin.to_numpy()), 1)
        np.testing.assert_array_equal(hist, truth)
    assert len(series) == 1 + len(COUNTRIES) + len(CHANNELS)


def test_tiny_volumes_do_not_alarm() -> None:
    """Null series at 3 to 30 events a bucket: the mean kind does not judge below its floor
    and the distribution test knows its own noise at that volume."""
    rng = np.random.default_rng(5)
    n_series, n = 60, 400
    counts = rng.poisson(rng.uniform(3, 30, (n_series, 1)), (n_series, n)).astype(float)
    sums = np.zeros_like(counts)
    squares = np.zeros_like(counts)
    for i in range(n_series):
        for t in range(n):
            x = rng.lognormal(3.0, 1.0, int(counts[i, t]))
            sums[i, t], squares[i, t] = x.sum(), (x * x).sum()
    means = detect_means(sums, counts, squares, options=DetectOptions())
    p = np.diff(np.linspace(0, 1, 21) ** 0.5)
    hist = np.stack([[rng.multinomial(int(c), p) for c in row] for row in counts]).astype(float)
    dists = detect_distributions(hist, np.linspace(0, 0.95, 20), options=DetectOptions())
    years = n_series * (n - 28) / 365
    assert sum(len(d.segments) for d in means) / years <= 1.0
    assert sum(len(d.segments) for d in dists) / years <= 1.0


def test_mean_shift_found_in_its_segment_and_attributed(tmp_path: Path) -> None:
    store, metric = _store(tmp_path, MEAN, _orders(3, shift_mean=True, shift_scores=False))
    result = detect_metric(store, metric, now=START + dt.timedelta(days=DAYS))
    found = [r for r in result.incidents if r["start_ts"] >= START + dt.timedelta(days=EVENT - 1)]
    assert any(r["slice"] in ("country=BR", "channel=app", "") and r["direction"] == "up" for r in found), found
    assert not [r for r in result.incidents if r["start_ts"] < START + dt.timedelta(days=EVENT - 1)
                and r["slice"] == ""]
    attribute_incidents(store, metric, unexplained(store, metric.name))
    with store.connect(read_only=True) as con:
        rows = con.execute("SELECT slice, explanation_json FROM incidents WHERE metric = 'order_value'"
                           " AND start_ts >= ? ORDER BY slice", [START + dt.timedelta(days=EVENT - 1)]).fetchall()
    total = [json.loads(e) for s, e in rows if s == ""]
    assert total, rows
    top = total[0]["causes"][0]["segment"]
    assert top == {"country": "BR", "channel": "app"}
    assert total[0]["verdict"] in ("rate", "mixed")


def test_distribution_shift_found_in_its_segment_with_moved_buckets(tmp_path: Path) -> None:
    store, metric = _store(tmp_path, DIST, _orders(4, shift_mean=False, shift_scores=True))
    result = detect_metric(store, metric, now=START + dt.timedelta(days=DAYS))
    before = [r for r in result.incidents if r["start_ts"] < START + dt.timedelta(days=EVENT)]
    assert len(before) <= 1, before  # null period: at most one false alarm over 9 series
    hits = {r["slice"]: r for r in result.incidents if r["start_ts"] in
            (START + dt.timedelta(days=EVENT), START + dt.timedelta(days=EVENT + 1))}
    assert "country=BR" in hits and "channel=app" in hits, list(hits)
    why = json.loads(hits["country=BR"]["why_json"])
    gained = [float(b["bucket"]) for b in why["buckets"]["gained"]]
    lost = [float(b["bucket"]) for b in why["buckets"]["lost"]]
    assert min(gained) >= 0.5 and max(lost) < 0.5
    assert hits["country=BR"]["direction"] == "up"
    attribute_incidents(store, metric, unexplained(store, metric.name))
    with store.connect(read_only=True) as con:
        raw = con.execute("SELECT explanation_json FROM incidents WHERE incident_id = ?",
                          [hits.get("", hits["country=BR"])["incident_id"]]).fetchone()[0]
    explanation = json.loads(raw)
    assert explanation["kind"] == "distribution"
    if hits.get(""):
        assert explanation["causes"][0]["segment"] == {"country": "BR", "channel": "app"}
        assert explanation["verdict"] in ("rate", "mixed")
        assert explanation["buckets"]["total"]["gained"]


def test_a_persisting_mean_shift_becomes_the_new_normal() -> None:
    """One incident, accepted after accept_after buckets; the new level then judged quiet."""
    rng = np.random.default_rng(9)
    n = 200
    counts = np.full((1, n), 2000.0)
    true_mean = np.where(np.arange(n) >= 120, 60.0, 50.0)[None, :]
    values_sd = 30.0
    sums = counts * true_mean + np.sqrt(counts) * values_sd * rng.normal(size=(1, n))
    squares = counts * (true_mean ** 2 + values_sd ** 2)
    det = detect_means(sums, counts, squares, options=DetectOptions(accept_after=10))[0]
    seg = det.segments[0]
    assert seg.start == 120 and seg.accepted and seg.accepted_at == 130 and seg.direction == "up"
    assert not det.anomalous[130:170].any()  # judged against the new level from then on
    assert not any(s.direction == "up" for s in det.segments[1:])
