"""The leaf screen: a seller x channel attack far below the pair floor is paged naming the
seller, a world without attack raises no screened incident, and a tiny memory budget
gives the same incidents as a large one."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from monitor.catalog import parse_metric
from monitor.config import ConfigError, detect_memory_limit, load_config, parse_size
from monitor.detect import mix as mix_module
from monitor.detect import screen
from monitor.detect import series as series_module
from monitor.detect.run_detection import detect_metric
from monitor.engine import Window
from monitor.store import Store

METRIC = """\
/* ---
name: fraud_rate
kind: ratio
grain: day
dimensions: [merchant_id, country, channel]
schedule: "0 6 * * *"
detect:
  direction: up
--- */
SELECT ts, merchant_id, country, channel, numerator, denominator FROM t WHERE ts >= $start AND ts < $end
"""
START = dt.datetime(2026, 1, 5)
DAYS = 90
SELLERS = 3000
CHANNELS = (("web", 0.55), ("app", 0.30), ("api", 0.15))
ATTACKED, ATTACK_CHANNEL, ATTACK_DAY = 347, "app", 70  # country C09: ~4 frauds expected in 4 days, ~31 attacked


def world(seed: int, attack: bool) -> pa.Table:
    """Sellers with Zipf-like volumes, 10 countries with their own fraud rate, weekly shape."""
    rng = np.random.default_rng(seed)
    day, seller, channel = (a.ravel() for a in np.meshgrid(np.arange(DAYS), np.arange(SELLERS), np.arange(3),
                                                           indexing="ij"))
    country = (seller * 7) % 10
    share = np.array([c[1] for c in CHANNELS])[channel]
    week = np.array([1.0, 1.04, 1.08, 1.05, 1.0, 0.75, 0.65])[day % 7]
    orders = rng.poisson(2000.0 / (1 + seller / 50.0) * share * week)
    rate = 0.004 + 0.001 * country
    if attack:
        hit = (seller == ATTACKED) & (channel == 1) & (day >= ATTACK_DAY) & (day < ATTACK_DAY + 4)
        rate = np.where(hit, rate * 8, rate)
    frauds = rng.binomial(orders, rate)
    return pa.table({
        "ts": pa.array((np.datetime64(START, "us") + day.astype("timedelta64[D]")).astype("datetime64[us]")),
        "merchant_id": pa.array([f"S{i:06d}" for i in range(SELLERS)]).take(pa.array(seller)),
        "country": pa.array([f"C{c:02d}" for c in range(10)]).take(pa.array(country)),
        "channel": pa.array([c[0] for c in CHANNELS]).take(pa.array(channel)),
        "numerator": frauds.astype(float),
        "denominator": orders.astype(float),
    })


def filled(tmp_path: Path, seed: int, attack: bool) -> tuple[Store, object]:
    metric, problems = parse_metric(METRIC, tmp_path / "fraud_rate.sql")
    assert not problems
    store = Store(tmp_path / "store.duckdb")
    store.write_window(metric, Window(START, START + dt.timedelta(days=DAYS)), world(seed, attack),
                       trigger="backfill", started_at=START)
    return store, metric


def rows(store: Store) -> list[tuple]:
    with store.connect(read_only=True) as con:
        return con.execute("SELECT slice, start_ts, end_ts, direction, round(score, 9) FROM incidents"
                           " ORDER BY slice, start_ts").fetchall()


def test_seller_channel_attack_below_the_pair_floor_is_paged_naming_the_seller(tmp_path):
    store, metric = filled(tmp_path, seed=1, attack=True)
    now = START + dt.timedelta(days=DAYS)
    result = detect_metric(store, metric, now=now)
    start = START + dt.timedelta(days=ATTACK_DAY)
    found = [r for r in result.incidents
             if json.loads(r["slice_json"]) == {"merchant_id": f"S{ATTACKED:06d}", "channel": ATTACK_CHANNEL}]
    assert found, [r["slice"] for r in result.incidents]
    assert abs(found[0]["start_ts"] - start) <= dt.timedelta(days=1)
    assert found[0]["direction"] == "up"
    # the pair holds about 0.06 % of the volume: only the screen can have brought it in
    assert json.loads(found[0]["why_json"])["series"] == f"channel={ATTACK_CHANNEL}&merchant_id=S{ATTACKED:06d}"


@pytest.mark.parametrize("seed", [2, 3])
def test_without_attack_screened_incidents_stay_within_the_budget(tmp_path, seed):
    store, metric = filled(tmp_path, seed=seed, attack=False)
    result = detect_metric(store, metric, now=START + dt.timedelta(days=DAYS))
    pair_incidents = [r["slice"] for r in result.incidents if "merchant_id" in r["slice"] and "&" in r["slice"]]
    # 9,000 pairs screened over 69 judged days: at most ALPHA_PER_30 x 69 / 30 = 1.15 expected
    assert len(pair_incidents) <= 2, pair_incidents


def test_a_tiny_memory_budget_gives_the_same_incidents(tmp_path, monkeypatch):
    store, metric = filled(tmp_path, seed=1, attack=True)
    now = START + dt.timedelta(days=DAYS)
    detect_metric(store, metric, now=now, memory_limit=10**9)
    large = rows(store)
    chunks, judged = [], []
    real = screen._min_p
    monkeypatch.setattr(screen, "_min_p", lambda c, v, d, **kw: chunks.append(len(c)) or real(c, v, d, **kw))
    real_batch = series_module.detect_batch
    monkeypatch.setattr(series_module, "detect_batch", lambda v, **kw: judged.append(len(v)) or real_batch(v, **kw))
    mixed = []
    real_rows = mix_module._Parts.rows
    monkeypatch.setattr(mix_module._Parts, "rows", lambda self, *a: mixed.append(a) or real_rows(self, *a))
    with store.connect() as con:
        con.execute("DELETE FROM incidents")
    detect_metric(store, metric, now=now, memory_limit=64 * 10**6)
    assert len(chunks) > 2  # the pairs did go through in several chunks
    assert max(judged) < SELLERS  # the sellers' series were judged in several chunks
    assert any(a and a[0] > 0 for a in mixed)  # and the mix test took the sellers in chunks
    assert rows(store) == large
    assert any(f"merchant_id=S{ATTACKED:06d}" in r[0] for r in large)


def test_screen_is_calibrated_on_poisson_noise_and_finds_a_bump():
    rng = np.random.default_rng(5)
    n_rows, n = 20000, 90
    volume = np.full((n_rows, n), 50.0)
    counts = rng.poisson(volume * 0.02).astype(float)  # one fraud a day
    counts[7, 60:64] += 9  # a bump of 36 over four days: z about 12
    zero = np.zeros((n_rows, 1))
    p = screen._min_p(np.hstack([zero, counts.cumsum(axis=1)]), np.hstack([zero, volume.cumsum(axis=1)]), "up")
    alpha = screen.ALPHA_PER_30 / (n_rows * 30 * len(screen.WINDOWS))
    assert p[7] < alpha
    # expected false candidates: ALPHA_PER_30 per 30 buckets judged, ~1.2 here
    assert (np.delete(p, 7) < alpha).sum() <= 4


def test_memory_limit_setting(tmp_path):
    assert parse_size("1GB") == 10**9 and parse_size("512MiB") == 512 * 2**20 and parse_size(4096) == 4096
    for bad in ("lots", "-1GB", 0, True):
        with pytest.raises(ValueError):
            parse_size(bad)
    (tmp_path / "monitor.toml").write_text('[project]\nname = "x"\n[detect]\nmemory_limit = "300MB"\n')
    assert detect_memory_limit(load_config(tmp_path)) == 300 * 10**6
    (tmp_path / "monitor.toml").write_text('[project]\nname = "x"\n[detect]\nmemory_limit = "much"\n')
    with pytest.raises(ConfigError):
        detect_memory_limit(load_config(tmp_path))
    assert detect_memory_limit(None) == 10**9


def test_expectations_written_in_chunks_equal_one_bulk_write(tmp_path, monkeypatch):
    from monitor.detect import run_detection

    store, metric = filled(tmp_path, seed=1, attack=True)
    now = START + dt.timedelta(days=DAYS)
    chunks = []
    real = run_detection._expectation_rows

    def counted(*args, **kwargs):
        chunks.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(run_detection, "_expectation_rows", counted)

    def stored():
        with store.connect(read_only=True) as con:
            return con.execute("SELECT * FROM expectations ORDER BY slice, ts").fetchall()

    detect_metric(store, metric, now=now, memory_limit=10**9)
    whole, bulk_chunks = stored(), len(chunks)
    chunks.clear()
    detect_metric(store, metric, now=now, memory_limit=10**6)  # a few series per chunk
    assert len(chunks) > bulk_chunks, "the small budget did not split the write"
    assert stored() == whole and len(whole) == (1 + SELLERS + 10 + 3) * DAYS


def _pooled_p(counts: np.ndarray, volume: np.ndarray, width: int) -> np.ndarray:
    """The screen's p per pair (rows: row value x width column values, in code order), with
    the pooled rate and tau2 measured as screen_pairs does, from a DuckDB screen_long."""
    import duckdb

    n_rows, n = counts.shape
    code = np.repeat(np.arange(n_rows), n)
    con = duckdb.connect()
    con.register("long", pa.table({"code": code, "__bucket": np.tile(np.arange(n), n_rows),
                                   "n": counts.ravel(), "d": volume.ravel()}))
    con.execute("CREATE TEMP TABLE screen_long AS SELECT * FROM long")
    columns, tau2 = screen._column_sums(con, width, n), screen._tau2(con, width)
    zero = np.zeros((n_rows, 1))
    keys = np.arange(n_rows)
    return screen._min_p(np.hstack([zero, counts.cumsum(axis=1)]), np.hstack([zero, volume.cumsum(axis=1)]), "up",
                         rows=keys // width, cols=keys % width, columns=columns, tau2=tau2), tau2


def test_the_pooled_rate_gives_a_thin_pair_power_and_stays_calibrated():
    rng = np.random.default_rng(11)
    sellers, width, n = 6000, 3, 90
    risk = np.array([1.0, 0.6, 1.8])  # channel rates relative to each other, as every seller has them
    seller_rate = 0.01 * rng.gamma(4.0, 0.25, sellers)  # sellers differ a lot
    share = np.array([0.55, 0.30, 0.15])
    volume = np.repeat((rng.uniform(5, 60, sellers)[:, None] * share[None, :]).ravel()[:, None], n, axis=1)
    rate = (seller_rate[:, None] * risk[None, :]).ravel()[:, None]
    counts = rng.poisson(volume * rate).astype(float)
    attacked = 3 * 400 + 2  # seller 400's api channel, x6 for 4 days
    counts[attacked, 70:74] = rng.poisson(volume[attacked, 70:74] * rate[attacked] * 6)
    alpha = screen.ALPHA_PER_30 / (sellers * width * 30 * len(screen.WINDOWS))
    pooled, tau2 = _pooled_p(counts, volume, width)
    zero = np.zeros((len(counts), 1))
    own = screen._min_p(np.hstack([zero, counts.cumsum(axis=1)]), np.hstack([zero, volume.cumsum(axis=1)]), "up")
    assert tau2 < 0.05  # the model holds here: pairs stray little from seller x channel
    assert pooled[attacked] < own[attacked] / 3  # the seller's other channels sharpen the expectation
    # calibration on the other 17,999 pairs: ALPHA_PER_30 x 69 / 30 = 1.15 expected at most
    assert (np.delete(pooled, attacked) < alpha).sum() <= 4

    # each pair with its own rate (the model fails): tau2 grows, the prior weakens, and the
    # screen stays calibrated
    wild = rate * rng.gamma(2.0, 0.5, rate.shape)
    counts = rng.poisson(volume * wild).astype(float)
    pooled, tau2 = _pooled_p(counts, volume, width)
    assert tau2 > 0.2
    assert (pooled < alpha).sum() <= 4


def test_a_pair_spread_over_several_leaves_per_bucket_is_summed(monkeypatch):
    """A pair whose traffic is split over two leaves a bucket (two devices) scores as the
    same traffic in one leaf: the screen sums a pair's leaves per bucket."""
    import duckdb

    rng = np.random.default_rng(5)
    n_buckets, sellers = 60, 40
    bucket, seller, channel = (a.ravel() for a in np.meshgrid(np.arange(n_buckets), np.arange(sellers), np.arange(2),
                                                              indexing="ij"))
    orders = rng.poisson(400.0 / (1 + seller / 5.0))
    frauds = rng.binomial(orders, 0.01 * np.where((seller == 3) & (channel == 1) & (bucket >= 50), 8, 1))
    one = pa.table({"merchant_id": [f"S{i:03d}" for i in seller], "channel": np.where(channel, "app", "web").tolist(),
                    "__bucket": bucket.astype(np.int32), "numerator": frauds, "denominator": orders})
    # the same traffic split over two leaves per pair and bucket (a third of each count in the first)
    first_n, first_d = frauds // 3, orders // 3
    split = pa.concat_tables([
        one.set_column(3, "numerator", pa.array(first_n)).set_column(4, "denominator", pa.array(first_d)),
        one.set_column(3, "numerator", pa.array(frauds - first_n)).set_column(4, "denominator", pa.array(orders - first_d)),
    ])

    def found(leaves: pa.Table):
        con = duckdb.connect()
        con.register("leaves_in", leaves)
        con.execute("CREATE TABLE leaves AS SELECT * FROM leaves_in")
        con.execute("CREATE TEMP TABLE slice_agg AS SELECT DISTINCT 1 AS __gid, merchant_id, NULL::VARCHAR AS channel"
                    " FROM leaves UNION ALL SELECT DISTINCT 2, NULL, channel FROM leaves")
        return screen.screen_pairs(con, "SELECT * FROM leaves", [], ("merchant_id", "channel"), n_buckets=n_buckets,
                                   num="numerator", den="denominator", direction="up", budget_bytes=10**9,
                                   single_gids={"merchant_id": 1, "channel": 2})

    whole = found(one)
    assert [(s, c) for s, c, _ in whole][:1] == [("S003", "app")]
    assert found(split) == pytest.approx(whole)


def test_many_chunks_sorted_by_row_value_find_what_one_chunk_finds():
    """A small budget makes >= SORT_CHUNKS chunks, read as ranges of a sorted copy of the
    leaves: the same candidates and p-values as one chunk over every pair."""
    import duckdb

    rng = np.random.default_rng(8)
    n_buckets, sellers = 50, 300
    bucket, seller, channel = (a.ravel() for a in np.meshgrid(np.arange(n_buckets), np.arange(sellers), np.arange(3),
                                                              indexing="ij"))
    orders = rng.poisson(300.0 / (1 + seller / 10.0))
    attacked = ((seller % 37 == 5) & (channel == 2) & (bucket >= 44)) | ((seller == 7) & (bucket >= 40))
    frauds = rng.binomial(orders, 0.01 * np.where(attacked, 9, 1))
    con = duckdb.connect()
    con.register("leaves_in", pa.table({"merchant_id": [f"S{i:03d}" for i in seller],
                                        "channel": np.array(["web", "app", "api"])[channel].tolist(),
                                        "__bucket": bucket.astype(np.int32), "numerator": frauds, "denominator": orders}))
    con.execute("CREATE TABLE leaves AS SELECT * FROM leaves_in")
    con.execute("CREATE TEMP TABLE slice_agg AS SELECT DISTINCT 1 AS __gid, merchant_id, NULL::VARCHAR AS channel"
                " FROM leaves UNION ALL SELECT DISTINCT 2, NULL, channel FROM leaves")
    sorted_tables = []

    def found(budget: int):
        out = screen.screen_pairs(con, "SELECT * FROM leaves", [], ("merchant_id", "channel"), n_buckets=n_buckets,
                                  num="numerator", den="denominator", direction="up", budget_bytes=budget,
                                  single_gids={"merchant_id": 1, "channel": 2})
        sorted_tables.append(con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'screen_sorted'")
                             .fetchone()[0])
        return out

    whole = found(10**9)
    cells = sellers * 3 * (n_buckets + 1) * screen.CELL_BYTES
    chunked = found(cells // (3 * screen.SORT_CHUNKS))  # about 3 x SORT_CHUNKS chunks
    assert len(whole) >= 5
    # Same candidates in the same order; p-values to rounding, since DuckDB's parallel sums
    # add in thread order and the last bits of a 1e-37 p-value follow them.
    assert [c[:-1] for c in chunked] == [c[:-1] for c in whole]
    assert [c[-1] for c in chunked] == pytest.approx([c[-1] for c in whole], rel=1e-9, abs=0)
    assert sorted_tables == [0, 0]  # dropped afterwards
