"""The demo world: deterministic, realistic, and every injected incident really is in the data."""
from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import duckdb
import pytest
import yaml

from monitor.demo.world import build_world, ground_truth, plan_incidents

METRICS_DIR = Path(__file__).resolve().parents[1] / "metrics"
START = dt.date(2026, 6, 1)
DAYS = 60

EXPECTED_COLUMNS = {
    "orders": {
        "order_id": "BIGINT", "created_at": "TIMESTAMP", "country": "VARCHAR", "channel": "VARCHAR",
        "device_os": "VARCHAR", "payment_method": "VARCHAR", "merchant_category": "VARCHAR",
        "account_age": "VARCHAR", "amount": "DOUBLE", "is_fraud": "BOOLEAN",
        "is_chargeback": "BOOLEAN", "coupon_code": "VARCHAR", "risk_score": "DOUBLE"},
    "payment_attempts": {
        "attempt_id": "BIGINT", "attempted_at": "TIMESTAMP", "country": "VARCHAR", "channel": "VARCHAR",
        "device_os": "VARCHAR", "payment_method": "VARCHAR", "card_bin": "VARCHAR",
        "declined": "BOOLEAN", "decline_reason": "VARCHAR"},
    "refunds": {
        "refund_id": "BIGINT", "order_id": "BIGINT", "refunded_at": "TIMESTAMP", "country": "VARCHAR",
        "channel": "VARCHAR", "merchant_category": "VARCHAR", "amount": "DOUBLE"},
    "coupon_redemptions": {
        "redemption_id": "BIGINT", "redeemed_at": "TIMESTAMP", "country": "VARCHAR", "channel": "VARCHAR",
        "device_os": "VARCHAR", "account_age": "VARCHAR", "coupon_code": "VARCHAR", "discount": "DOUBLE"},
    "signups": {
        "signup_id": "BIGINT", "created_at": "TIMESTAMP", "country": "VARCHAR", "channel": "VARCHAR",
        "device_os": "VARCHAR", "is_fake": "BOOLEAN"},
}
TIME_COLUMN = {"orders": "created_at", "payment_attempts": "attempted_at", "refunds": "refunded_at",
               "coupon_redemptions": "redeemed_at", "signups": "created_at"}

# How each metric of the ground truth is measured straight from the raw tables:
# (table, time column, numerator expression, denominator expression or None for counts).
RAW = {
    "fraud_rate": ("orders", "created_at", "count(*) FILTER (WHERE is_fraud)", "count(*)"),
    "chargeback_rate": ("orders", "created_at", "count(*) FILTER (WHERE is_chargeback)", "count(*)"),
    "payment_decline_rate": ("payment_attempts", "attempted_at", "count(*) FILTER (WHERE declined)", "count(*)"),
    "refund_rate": ("orders", "created_at",
                    "count(*) FILTER (WHERE order_id IN (SELECT order_id FROM refunds))", "count(*)"),
    "coupon_redemptions": ("coupon_redemptions", "redeemed_at", "count(*)", None),
    "fake_signups": ("signups", "created_at", "count(*) FILTER (WHERE is_fake)", None),
    "orders": ("orders", "created_at", "count(*)", None),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    path = tmp_path_factory.mktemp("world") / "demo.duckdb"
    result = build_world(path, seed=7, days=DAYS, start=START, scale=0.5)
    con = duckdb.connect(str(path), read_only=True)
    yield result, con
    con.close()


def _day(i: int) -> dt.datetime:
    return dt.datetime.combine(START + dt.timedelta(days=i), dt.time())


def _index(iso: str | None, default: int) -> int:
    return default if iso is None else (dt.date.fromisoformat(iso) - START).days


def _incident(result, key):
    return next(i for i in result["ground_truth"]["incidents"] if i["id"] == key)


def _where(segment: dict) -> str:
    parts = [f"coalesce({k}, 'none') = '{v}'" if k == "card_bin" else f"{k} = '{v}'" for k, v in segment.items()]
    return " AND ".join(parts) or "true"


def _measure(con, metric: str, segment: dict, days: list[int]) -> tuple[float, float]:
    """(numerator, denominator) of a metric on the segment over the given day indices.

    For count metrics the denominator is the number of days, so num/den is a daily mean.
    """
    table, ts, num, den = RAW[metric]
    day_list = ", ".join(f"DATE '{(START + dt.timedelta(days=d)).isoformat()}'" for d in days)
    n, d = con.execute(f"SELECT {num}, {den or 'NULL'} FROM {table} "
                       f"WHERE {_where(segment)} AND CAST({ts} AS DATE) IN ({day_list})").fetchone()
    return float(n), float(d if den else len(days))


def _clean_days_before(result, metric: str, first: int) -> list[int]:
    """Days before ``first`` on which no injected incident touches the metric."""
    busy = set()
    for inc in result["ground_truth"]["incidents"]:
        if metric in inc["metrics"]:
            busy.update(range(_index(inc["start"], 0), _index(inc["end"], DAYS)))
    return [d for d in range(first) if d not in busy]


def _z(n1, d1, n0, d0) -> float:
    """Two-proportion z statistic of rate n1/d1 against n0/d0."""
    p = (n1 + n0) / (d1 + d0)
    return (n1 / d1 - n0 / d0) / math.sqrt(p * (1 - p) * (1 / d1 + 1 / d0))


def _checksums(path: Path) -> dict[str, tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        out = {}
        for table, columns in EXPECTED_COLUMNS.items():
            key = next(iter(columns))
            out[table] = con.execute(
                f"SELECT count(*), md5(string_agg(CAST(x AS VARCHAR), chr(10) ORDER BY x.{key})) FROM {table} AS x"
            ).fetchone()
        return out


# --- determinism and shape -------------------------------------------------------------------

def test_same_seed_gives_identical_tables_and_rebuild_replaces_them(tmp_path):
    small = dict(days=30, scale=0.02)
    a, b = tmp_path / "a" / "demo.duckdb", tmp_path / "b" / "demo.duckdb"
    build_world(a, seed=3, **small)
    build_world(b, seed=3, **small)
    assert _checksums(a) == _checksums(b)
    assert (a.parent / "ground_truth.json").read_bytes() == (b.parent / "ground_truth.json").read_bytes()

    with duckdb.connect(str(b)) as con:
        con.execute("CREATE TABLE keep_me AS SELECT 42 AS answer")
    result = build_world(b, seed=4, **small)  # rebuild in place with another seed
    other = _checksums(b)
    assert all(other[t] != v for t, v in _checksums(a).items())
    assert {t: v[0] for t, v in other.items()} == result["rows"]
    with duckdb.connect(str(b), read_only=True) as con:
        assert con.execute("SELECT answer FROM keep_me").fetchone() == (42,)
    assert json.loads((b.parent / "ground_truth.json").read_text())["seed"] == 4


def test_tables_columns_and_time_range(world):
    result, con = world
    assert result["start"] == "2026-06-01" and result["end"] == "2026-07-31"
    assert json.loads(Path(result["ground_truth_path"]).read_text()) == result["ground_truth"]
    for table, columns in EXPECTED_COLUMNS.items():
        described = {name: typ for name, typ, *_ in con.execute(f"DESCRIBE {table}").fetchall()}
        assert described == columns, table
        ts = TIME_COLUMN[table]
        count, lo, hi = con.execute(f"SELECT count(*), min({ts}), max({ts}) FROM {table}").fetchone()
        assert count == result["rows"][table] > 0
        assert _day(0) <= lo and hi < _day(DAYS), table
    ids = con.execute("SELECT count(DISTINCT order_id) = count(*), "
                      "bool_and(order_id IN (SELECT order_id FROM orders)) FROM refunds").fetchone()
    assert ids == (True, True)
    late = con.execute("SELECT count(*) FROM refunds r JOIN orders o USING (order_id) "
                       "WHERE r.refunded_at < o.created_at").fetchone()[0]
    assert late == 0
    nulls = con.execute("SELECT count(*) FILTER (WHERE (card_bin IS NULL) <> (payment_method <> 'card')), "
                        "count(*) FILTER (WHERE (decline_reason IS NULL) = declined) FROM payment_attempts").fetchone()
    assert nulls == (0, 0)


def test_volumes_and_base_rates_are_realistic(world):
    result, con = world
    clean = list(range(20))  # before the first incident
    fraud = _measure(con, "fraud_rate", {}, clean)
    chargeback = _measure(con, "chargeback_rate", {}, clean)
    decline = _measure(con, "payment_decline_rate", {}, clean)
    refund = _measure(con, "refund_rate", {}, clean)
    fake = con.execute("SELECT avg(is_fake::INT) FROM signups WHERE created_at < ?", [_day(20)]).fetchone()[0]
    assert 0.003 <= fraud[0] / fraud[1] <= 0.01
    assert 0.002 <= chargeback[0] / chargeback[1] <= 0.005
    assert 0.05 <= decline[0] / decline[1] <= 0.10
    assert 0.03 <= refund[0] / refund[1] <= 0.06
    assert 0.01 <= fake <= 0.06
    shares = con.execute("SELECT country, count(*) / sum(count(*)) OVER () AS s FROM orders "
                         "GROUP BY ALL ORDER BY s DESC").fetchall()
    assert shares[0][0] == "US" and shares[0][1] > 0.2 and len(shares) >= 15 and shares[-1][1] < 0.01
    per_dow = dict(con.execute("SELECT isodow(created_at), count(*) FROM orders WHERE created_at < ? "
                               "GROUP BY ALL", [_day(28)]).fetchall())
    assert per_dow[6] > 1.08 * per_dow[2]  # Saturdays busier than Tuesdays
    per_hour = dict(con.execute("SELECT hour(created_at), count(*) FROM orders GROUP BY ALL").fetchall())
    assert max(per_hour.values()) > 2 * min(per_hour.values())  # an intraday pattern


# --- the incidents are in the raw data ---------------------------------------------------------

@pytest.mark.parametrize("key,metric,factor", [
    ("card_testing", "payment_decline_rate", 2.0),
    ("refund_ring", "refund_rate", 2.0),
    ("ato_wave", "fraud_rate", 2.0),
    ("ato_wave", "chargeback_rate", 1.5),  # only part of the fraud comes back as chargebacks
    ("decline_rule_change", "payment_decline_rate", 2.0),
    ("coupon_abuse", "coupon_redemptions", 2.0),
    ("fake_signup_burst", "fake_signups", 2.0),
])
def test_incident_is_visible_in_its_segment(world, key, metric, factor):
    result, con = world
    inc = _incident(result, key)
    assert metric in inc["metrics"]
    first, last = _index(inc["start"], 0), _index(inc["end"], DAYS)
    during = list(range(first, last))
    before = _clean_days_before(result, metric, first)
    seg_during, seg_before = _measure(con, metric, inc["segment"], during), _measure(con, metric, inc["segment"], before)
    all_during, all_before = _measure(con, metric, {}, during), _measure(con, metric, {}, before)
    seg_change = (seg_during[0] / seg_during[1]) / (seg_before[0] / seg_before[1])
    total_change = (all_during[0] / all_during[1]) / (all_before[0] / all_before[1])
    # The segment moves by at least `factor`; the total moves less (diluted by the other traffic).
    if inc["direction"] == "up":
        assert seg_change >= factor, (key, seg_change)
        assert total_change < seg_change / 1.5, (key, total_change)
    else:
        assert seg_change <= 1 / factor + 0.1, (key, seg_change)
        assert seg_change * 1.5 < total_change < 1.0, (key, total_change)


def test_incident_segment_is_a_modest_share_of_its_metric(world):
    result, con = world
    for key, metric in [("card_testing", "payment_decline_rate"), ("refund_ring", "refund_rate"),
                        ("ato_wave", "fraud_rate"), ("decline_rule_change", "payment_decline_rate")]:
        inc = _incident(result, key)
        days = list(range(_index(inc["start"], 0), _index(inc["end"], DAYS)))
        share = _measure(con, metric, inc["segment"], days)[1] / _measure(con, metric, {}, days)[1]
        assert 0.01 <= share <= 0.25, (key, share)


def test_mix_shift_moves_the_share_but_not_the_rate(world):
    result, con = world
    inc = _incident(result, "traffic_mix_shift")
    assert inc["type"] == "mix"
    first, last = _index(inc["start"], 0), _index(inc["end"], DAYS)
    during, before = list(range(first, last)), _clean_days_before(result, "fraud_rate", first)
    (dim, value), = inc["segment"].items()
    days = {"during": during, "before": before}
    by = {k: {c: (n, d) for c, n, d in con.execute(
        f"SELECT {dim}, count(*) FILTER (WHERE is_fraud), count(*) FROM orders "
        f"WHERE CAST(created_at AS DATE) >= ? AND CAST(created_at AS DATE) <= ? GROUP BY ALL",
        [START + dt.timedelta(days=min(v)), START + dt.timedelta(days=max(v))]).fetchall()}
        for k, v in days.items()}
    total = {k: sum(d for _, d in by[k].values()) for k in by}
    share = {k: by[k][value][1] / total[k] for k in by}
    assert 1.6 <= share["during"] / share["before"] <= 2.4
    for metric in ("fraud_rate", "chargeback_rate"):  # the country's own rates did not move
        assert abs(_z(*_measure(con, metric, inc["segment"], during), *_measure(con, metric, inc["segment"], before))) < 4.0
    # Decompose the total's change: today's mix at yesterday's rates vs. yesterday's total.
    rate_before = {c: n / d for c, (n, d) in by["before"].items()}
    mix_only = sum(d / total["during"] * rate_before[c] for c, (_, d) in by["during"].items())
    before_total = sum(n for n, _ in by["before"].values()) / total["before"]
    during_total = sum(n for n, _ in by["during"].values()) / total["during"]
    assert mix_only > 1.1 * before_total  # the mix alone lifts the total fraud rate
    assert abs(during_total / mix_only - 1) < 0.25  # ... and explains what was observed


def test_holiday_changes_volume_but_not_rates(world):
    result, con = world
    inc = _incident(result, "holiday_sale")
    assert inc["type"] == "volume" and "must not fire" in inc["note"]
    first, last = _index(inc["start"], 0), _index(inc["end"], DAYS)
    during = list(range(first, last))
    for metric in ("orders", "coupon_redemptions", "fake_signups"):
        assert metric in inc["metrics"]
        before = _clean_days_before(result, metric, first)[-14:]
        lift = _measure(con, metric, {}, during)[0] / len(during) / (_measure(con, metric, {}, before)[0] / len(before))
        assert lift >= 1.8, (metric, lift)
    for metric, tolerance in [("fraud_rate", 0.3), ("chargeback_rate", 0.35),
                              ("payment_decline_rate", 0.15), ("refund_rate", 0.15)]:
        assert metric not in inc["metrics"]
        before = _clean_days_before(result, metric, first)[-14:]
        n1, d1 = _measure(con, metric, {}, during)
        n0, d0 = _measure(con, metric, {}, before)
        assert d1 / len(during) >= 1.8 * d0 / len(before), metric  # volume did rise
        assert abs((n1 / d1) / (n0 / d0) - 1) < tolerance, metric


# --- ground truth -------------------------------------------------------------------------------

def test_ground_truth_is_complete_and_placed_after_clean_history():
    truth = ground_truth(seed=7)
    assert truth["start"] == "2026-06-01" and truth["end"] == "2026-09-29"
    metrics = {p.stem: yaml.safe_load(p.read_text().split("/* ---", 1)[1].split("--- */", 1)[0])
               for p in METRICS_DIR.glob("*.sql")}
    ids = {i["id"] for i in truth["incidents"]}
    assert ids == {"card_testing", "coupon_abuse", "refund_ring", "decline_rule_change", "traffic_mix_shift",
                   "ato_wave", "fake_signup_burst", "holiday_sale", "score_shift"}
    for inc in truth["incidents"]:
        assert set(inc) == {"id", "title", "metrics", "type", "direction", "start", "end", "segment", "note",
                            "visible_on"}
        assert inc["type"] in {"rate", "mix", "volume", "distribution"} and inc["direction"] in {"up", "down"}
        assert (dt.date.fromisoformat(inc["start"]) - START).days > 40, inc["id"]
        assert inc["end"] is None or inc["start"] < inc["end"] <= truth["end"]
        assert inc["metrics"] and set(inc["metrics"]) <= set(metrics), inc["id"]
        assert any(set(inc["segment"]) <= set(metrics[m]["dimensions"]) for m in inc["metrics"]), inc["id"]
        if inc["type"] == "volume":
            assert all(metrics[m]["kind"] == "sum" for m in inc["metrics"])
    assert [i["end"] for i in truth["incidents"] if i["id"] == "decline_rule_change"] == [None]


def test_incidents_never_overlap_on_a_metric_for_any_length():
    for days in range(30, 366):
        truth = ground_truth(days=days)
        end = truth["end"]
        by_metric: dict[str, list[tuple[str, str]]] = {}
        for inc in truth["incidents"]:
            assert inc["start"] < (inc["end"] or end) <= end
            for metric in inc["metrics"]:
                by_metric.setdefault(metric, []).append((inc["start"], inc["end"] or end))
        for metric, spans in by_metric.items():
            spans.sort()
            assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), (days, metric, spans)


def test_too_short_a_world_is_refused(tmp_path):
    with pytest.raises(ValueError, match="at least 30 days"):
        plan_incidents(20)
    with pytest.raises(ValueError, match="at least 30 days"):
        build_world(tmp_path / "demo.duckdb", days=20)
    assert not (tmp_path / "demo.duckdb").exists()


# --- the metric files ---------------------------------------------------------------------------

def _header(path: Path) -> dict:
    text = path.read_text()
    assert text.startswith("/* ---\n"), path
    return yaml.safe_load(text.split("/* ---", 1)[1].split("--- */", 1)[0])


def test_metric_files_are_valid_for_the_catalog():
    from monitor.catalog import load_catalog

    catalog = load_catalog(METRICS_DIR)
    assert not catalog.problems, [str(p) for p in catalog.problems]
    assert len(catalog.metrics) >= 7
    assert all(m.path.stem == m.name for m in catalog.metrics.values())
    assert {m.kind for m in catalog.metrics.values()} == {"ratio", "sum", "mean", "distribution"}
    assert {m.grain for m in catalog.metrics.values()} == {"day", "hour"}
    assert all(m.title and m.owner and m.team and m.runbook.startswith("https://") for m in catalog.metrics.values())


@pytest.mark.parametrize("path", sorted(METRICS_DIR.glob("*.sql")), ids=lambda p: p.stem)
def test_metric_sql_runs_on_the_world(world, path):
    result, con = world
    header = _header(path)
    from monitor.catalog.metric import MEASURES

    keys = [*header["dimensions"], *([header.get("bucket", "bucket")] if header["kind"] == "distribution" else [])]
    expected = ["ts", *keys, *MEASURES[header["kind"]]]
    sql = path.read_text()  # the whole file, header comment included, is valid SQL
    window = {"start": _day(10), "end": _day(12)}
    cursor = con.execute(sql, window)
    assert [c[0] for c in cursor.description] == expected
    rows = cursor.fetchall()
    assert rows
    step = dt.timedelta(hours=1) if header["grain"] == "hour" else dt.timedelta(days=1)
    buckets = {r[0] for r in rows}
    assert min(buckets) == window["start"] and max(buckets) == window["end"] - step
    assert all((b - window["start"]) % step == dt.timedelta(0) for b in buckets)
    dims = len(keys)
    assert len({r[: 1 + dims] for r in rows}) == len(rows)  # one row per leaf
    assert all(v is not None for r in rows for v in r)
    if header["kind"] == "ratio":
        assert all(0 <= r[-2] <= r[-1] for r in rows)
    # Leaf counts stay moderate: low thousands per day at most.
    per_day = len(rows) / 2
    assert per_day < 3000, per_day
