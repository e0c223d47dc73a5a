"""Dashboard speed benchmark: render times of the overview, incident and metric pages.

Builds a store of 50 metrics x 365 days x 2,000 slices (leaf combinations of four
dimensions: 20 countries x 4 channels x 5 device OSes x 5 payment methods), i.e.
36.5 M leaf rows, with expected bands for the total and every one-dimension slice,
change points and ~330 incidents (open ones explained by the real ``explain``),
then times each page with Streamlit's AppTest:

- cold: the store's modification time is bumped before every run, as when the
  scheduler has written, so the page's cached reads are all missed and every
  read goes to the store (the metric files' parsed headers stay cached: they
  change only when a file does);
- warm: the same page again (what a reload within the cache TTL costs);
- query: only the page's store reads (one read-only connection).

Targets (issue 7): overview <= 1.5 s, incident page <= 1 s (median, cold).

    .venv/bin/python benchmarks/dashboard.py [--dir DIR] [--reps 7] [--metrics 50] [--days 365]

The store is kept in DIR (default: a temporary folder, deleted) and reused when it exists.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

from monitor.store import Store, leaves_table  # noqa: E402

COUNTRIES = [f"C{i:02d}" for i in range(20)]
CHANNELS = ["web", "app", "api", "pos"]
DEVICES = ["ios", "android", "windows", "macos", "other"]
PAYMENTS = ["card", "paypal", "wallet", "bank", "bnpl"]
DIMENSIONS = ["country", "channel", "device_os", "payment_method"]
START = dt.datetime(2025, 6, 1)
OWNERS = [("risk-oncall", "payments-risk"), ("disputes", "payments-risk"), ("trust", "accounts"),
          ("promo-abuse", "growth"), ("risk-analytics", "growth")]
SEVERITIES = ["high", "medium", "critical", "low", "medium"]


def metric_names(n: int) -> list[str]:
    kinds = ["fraud_rate", "decline_rate", "chargeback_rate", "fake_signup_rate", "coupon_abuse_count"]
    return [f"{kinds[i % len(kinds)]}_{i:02d}" for i in range(n)]


def kind_of(name: str) -> str:
    return "sum" if name.startswith("coupon") else "ratio"


def write_project(root: Path, names: list[str]) -> Path:
    (root / "metrics").mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        owner, team = OWNERS[i % len(OWNERS)]
        kind = kind_of(name)
        measures = ("count(*) FILTER (WHERE flagged) AS numerator, count(*) AS denominator" if kind == "ratio"
                    else "count(*) FILTER (WHERE flagged) AS value")
        (root / "metrics" / f"{name}.sql").write_text(textwrap.dedent(f"""\
            /* ---
            name: {name}
            title: {name.replace('_', ' ').capitalize()}
            owner: {owner}
            team: {team}
            severity: {SEVERITIES[i % len(SEVERITIES)]}
            kind: {kind}
            grain: day
            dimensions: [{', '.join(DIMENSIONS)}]
            schedule: "0 6 * * *"
            --- */
            SELECT date_trunc('day', created_at) AS ts, {', '.join(DIMENSIONS)}, {measures}
            FROM events WHERE created_at >= $start AND created_at < $end GROUP BY ALL
            """))
    (root / "monitor.toml").write_text('[project]\nname = "bench"\n\n[dashboard]\nmin_segment_size = 30\n')
    return root / "monitor.toml"


def build_store(root: Path, n_metrics: int, days: int) -> None:
    from monitor.catalog import load_catalog
    from monitor.config import load_config

    names = metric_names(n_metrics)
    config = load_config(write_project(root, names))
    catalog = load_catalog(config.metrics_dir)
    store = Store(config.store_path)
    store.init()
    incident_metrics = set(names[: max(1, n_metrics // 5)])
    t0 = time.perf_counter()
    with store.connect() as con:
        con.execute("SET preserve_insertion_order = true")
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE combos AS
            SELECT c, {_pick('country', COUNTRIES, 'c % 20')}, {_pick('channel', CHANNELS, '(c // 20) % 4')},
                   {_pick('device_os', DEVICES, '(c // 80) % 5')},
                   {_pick('payment_method', PAYMENTS, '(c // 400) % 5')},
                   -- skewed traffic: big countries and card payments dominate, many leaves are tiny
                   greatest(1.0, 900 * exp(-(c % 20) / 3.0) * exp(-((c // 400) % 5) / 1.5)
                                 * (1 + (c // 20) % 4) / 4 * (1 + (c // 80) % 5) / 5) AS base
            FROM range(2000) t(c)""")
        for i, name in enumerate(names):
            metric = catalog.metrics[name]
            kind = metric.kind
            bump = ("CASE WHEN country = 'C03' AND device_os = 'android' AND d >= ? THEN 3.0 ELSE 1.0 END"
                    if name in incident_metrics else "1.0")
            params = [days - 6] if name in incident_metrics else []
            noise = f"(0.6 + 0.8 * ((hash(d, c, {i}) % 1000) / 1000.0))"
            volume = ("round(base * (CASE WHEN dayofweek(ts) IN (0, 6) THEN 1.2 ELSE 1.0 END)"
                      " * (0.85 + 0.3 * ((hash(c, d) % 100) / 100.0)))")
            rate = f"(0.004 + 0.002 * (c % 7) / 7.0) * {bump}"
            measures = (f"round({volume} * {rate} * {noise})::DOUBLE AS numerator, {volume}::DOUBLE AS denominator"
                        if kind == "ratio" else f"round({volume} * 0.05 * {noise} * {bump})::DOUBLE AS value")
            con.execute(f"""
                CREATE OR REPLACE TABLE "{leaves_table(name)}" AS
                SELECT ts, country, channel, device_os, payment_method, {measures}
                FROM (SELECT d, ?::TIMESTAMP + to_days(d::INTEGER) AS ts FROM range({days}) t(d)) days, combos
                ORDER BY ts""", [*params, START])
            con.execute("INSERT OR REPLACE INTO metric_definitions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [name, metric.definition_hash, kind, "day", DIMENSIONS, json.dumps(metric.header_dict()),
                         str(metric.path), START + dt.timedelta(days=days)])
            con.execute("INSERT INTO runs (metric, window_start, window_end, started_at, finished_at, rows, status,"
                        " definition_hash, trigger) VALUES (?, ?, ?, ?, ?, ?, 'ok', ?, 'backfill')",
                        [name, START, START + dt.timedelta(days=days), START, START, days * 2000,
                         metric.definition_hash])
            _expectations(con, name, kind)
            print(f"\r  built {i + 1}/{len(names)} metrics ({time.perf_counter() - t0:.0f} s)", end="", file=sys.stderr)
        print(file=sys.stderr)
        con.execute("CHECKPOINT")
    _incidents(store, catalog, names, incident_metrics, days)


def _pick(column: str, values: list[str], index: str) -> str:
    return f"{values!r}[1 + {index}] AS {column}".replace("'", "'")


def _expectations(con, name: str, kind: str) -> None:
    value = "sum(numerator) / nullif(sum(denominator), 0)" if kind == "ratio" else "sum(value)"
    volume = "sum(denominator)" if kind == "ratio" else "sum(value)"
    label = "CASE " + " ".join(f"WHEN GROUPING({d}) = 0 THEN '{d}=' || {d}" for d in DIMENSIONS) + " ELSE '' END"
    sets = ", ".join(["(ts)", *(f"(ts, {d})" for d in DIMENSIONS)])
    con.execute(f"""
        INSERT INTO expectations
        WITH obs AS (
            SELECT {label} AS slice, ts, {value} AS observed, {volume} AS volume
            FROM "{leaves_table(name)}" GROUP BY GROUPING SETS ({sets})),
        band AS (
            SELECT *, median(observed) OVER w AS expected, 1.4826 * mad(observed) OVER w AS sd
            FROM obs WINDOW w AS (PARTITION BY slice ORDER BY ts ROWS BETWEEN 28 PRECEDING AND 1 PRECEDING))
        SELECT ?, slice, ts, observed, volume, expected, expected - 3 * sd, expected + 3 * sd,
               (observed - expected) / nullif(sd, 0), coalesce(abs((observed - expected) / nullif(sd, 0)) > 3, false)
        FROM band ORDER BY slice, ts""", [name])


def _incidents(store: Store, catalog, names: list[str], incident_metrics: set[str], days: int) -> None:
    from monitor.attribute.incident_attribution import explain_incident

    end = START + dt.timedelta(days=days)
    rows, explained = [], {}
    for i, name in enumerate(names):
        metric = catalog.metrics[name]
        episodes = []
        for k in range(6):  # the year's history: resolved, some labelled
            start = START + dt.timedelta(days=40 + 50 * k + i % 13)
            segment = {"country": COUNTRIES[(i + k) % 20]} if k % 2 else {}
            episodes.append((segment, start, start + dt.timedelta(days=3), "resolved"))
        if name in incident_metrics:
            start = end - dt.timedelta(days=6)
            for segment in ({}, {"country": "C03"}, {"country": "C03", "device_os": "android"}):
                episodes.append((segment, start, None, "open"))
        for segment, start, stop, status in episodes:
            label = "&".join(f"{d}={segment[d]}" for d in sorted(segment))
            rows.append({
                "incident_id": f"{name}-{label or 'total'}-{start:%Y%m%d}", "metric": name, "slice": label,
                "slice_json": json.dumps(segment, sort_keys=True), "parent_id": None, "start_ts": start,
                "end_ts": stop, "last_ts": (stop or end) - dt.timedelta(days=1), "direction": "up",
                "kind": "level_shift", "baseline": 0.005 if metric.kind == "ratio" else 1000.0,
                "observed": 0.008 if metric.kind == "ratio" else 1500.0, "relative_change": 0.6,
                "score": 8.0 + (i % 5), "severity": metric.severity, "status": status,
                "resolution": "recovered" if stop else None,
                "why_json": json.dumps({"detector": "seasonal_band", "period": 7, "series": label or "total",
                                        "segment_kind": "level_shift", "slices_tested": 34 if segment else None}),
                "explanation_json": None, "created_at": end, "updated_at": end,
                "label": "true_positive" if status == "resolved" and i % 3 == 0 else None,
            })
            # The real attribution for the open incidents of one ratio and one sum metric; the
            # others of the same kind and slice reuse it (rendering cost is the same).
            key = (metric.kind, label, status)
            if status == "open" and key not in explained:
                t = time.perf_counter()
                explained[key] = json.dumps(explain_incident(store, metric, rows[-1]).to_dict())
                print(f"  explained {name} {label or 'total'} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
            rows[-1]["explanation_json"] = explained.get(key)
    columns = list(rows[0])
    with store.connect() as con:
        con.executemany(f"INSERT INTO incidents ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                        [[r[c] for c in columns] for r in rows])
        con.executemany("INSERT INTO change_points VALUES (?, ?, ?)",
                        [(r["metric"], r["slice"], r["start_ts"]) for r in rows])


# -- measuring --------------------------------------------------------------------------------------
def time_queries(config_path: Path, incident_id: str, metric: str, reps: int) -> dict[str, float]:
    """Median seconds of each page's store reads (one read-only connection, no caching)."""
    from monitor.config import load_config
    from monitor.dashboard import queries

    config = load_config(config_path)
    store = Store(config.store_path)
    out = {}

    def overview():
        with queries.reading(store) as con:
            headers = queries.metric_headers(con)
            queries.overview_frame(con, headers)
            queries.incidents_frame(con, status="open")

    def incident():
        with queries.reading(store) as con:
            inc = queries.incident_row(con, incident_id)
            header = queries.metric_headers(con)[inc["metric"]]
            start = inc["start_ts"] - dt.timedelta(days=28)
            queries.metric_series(con, header, inc["segment"], start=start, end=inc["last_ts"] + dt.timedelta(days=1),
                                  min_size=30)
            queries.related_incidents(con, inc, header)
            queries.attribution_volumes(con, inc, header)

    def metric_page(segment):
        with queries.reading(store) as con:
            header = queries.metric_headers(con)[metric]
            first, last = queries.data_range(con, metric)
            start, end = last - dt.timedelta(days=90), last + dt.timedelta(days=1)
            queries.metric_series(con, header, segment, start=start, end=end, min_size=30)
            queries.change_points(con, metric, segment, start=start, end=end)
            queries.metric_incidents(con, header, start=start, end=end)
            for dim in header["dimensions"]:
                queries.slice_values(con, header, dim, within={}, since=last - dt.timedelta(days=27), min_size=30)

    for name, fn in (("overview", overview), ("incident", incident),
                     ("metric (total)", lambda: metric_page({})),
                     ("metric (2-dim slice)", lambda: metric_page({"country": "C03", "device_os": "android"}))):
        fn()
        samples = []
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t)
        out[name] = statistics.median(samples)
    return out


def time_pages(config_path: Path, pages: dict[str, dict[str, str]], reps: int) -> dict[str, dict[str, float]]:
    """Median AppTest run time of each page, with cold and warm data caches."""
    from streamlit.testing.v1 import AppTest

    from monitor.config import load_config

    store_path = load_config(config_path).store_path
    os.environ["MONITOR_CONFIG"] = str(config_path)
    results = {}
    for name, params in pages.items():
        at = AppTest.from_file(str(ROOT / "dashboards" / "app.py"), default_timeout=120)
        for key, value in params.items():
            at.query_params[key] = value
        at.run()  # imports, component scan: once per server process, not per page view
        if at.exception:
            raise RuntimeError(f"{name} page failed: {at.exception[0].message}")
        cold, warm = [], []
        for _ in range(reps):
            os.utime(store_path)  # new store version: every cached read misses
            t = time.perf_counter()
            at.run()
            cold.append(time.perf_counter() - t)
            t = time.perf_counter()
            at.run()
            warm.append(time.perf_counter() - t)
        results[name] = {"cold": statistics.median(cold), "warm": statistics.median(warm),
                         "cold_max": max(cold), "warm_max": max(warm)}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, help="where to build (and keep) the store; reused if present")
    parser.add_argument("--metrics", type=int, default=50)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="monitor-dash-bench-"))
    config_path = root / "monitor.toml"
    try:
        if not (root / "store.duckdb").exists():
            t = time.perf_counter()
            build_store(root, args.metrics, args.days)
            print(f"store built in {time.perf_counter() - t:.0f} s: {root / 'store.duckdb'} "
                  f"({(root / 'store.duckdb').stat().st_size / 1e6:.0f} MB)", file=sys.stderr)
        con = duckdb.connect(str(root / "store.duckdb"), read_only=True)
        n_metrics = con.execute("SELECT count(*) FROM metric_definitions").fetchone()[0]
        leaves = sum(con.execute(f'SELECT count(*) FROM "{leaves_table(m)}"').fetchone()[0]
                     for (m,) in con.execute("SELECT metric FROM metric_definitions").fetchall())
        incident_id, metric = con.execute(
            "SELECT incident_id, metric FROM incidents WHERE status = 'open' AND slice = 'country=C03'"
            " ORDER BY metric LIMIT 1").fetchone()
        n_incidents = con.execute("SELECT count(*) FROM incidents").fetchone()[0]
        n_days = con.execute(f'SELECT count(DISTINCT ts) FROM "{leaves_table(metric)}"').fetchone()[0]
        con.close()
        print(f"store: {n_metrics} metrics, {leaves:,} leaf rows, {n_incidents} incidents", file=sys.stderr)
        queries = time_queries(config_path, incident_id, metric, args.reps)
        pages = time_pages(config_path, {
            "overview": {},
            "incident": {"page": "incident", "id": incident_id},
            "metric (total)": {"page": "metric", "metric": metric},
            "metric (2-dim slice)": {"page": "metric", "metric": metric, "slice": "country=C03&device_os=android"},
        }, args.reps)
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)
    targets = {"overview": 1.5, "incident": 1.0}
    print(f"\nDashboard on {n_metrics} metrics x {n_days} days x 2,000 slices ({leaves:,} leaf rows), "
          f"median of {args.reps} runs, seconds:")
    print(f"{'page':<22}{'cold':>8}{'(max)':>8}{'warm':>8}{'query':>8}{'target':>8}")
    for name, t in pages.items():
        target = targets.get(name)
        verdict = "" if target is None else ("  ok" if t["cold"] <= target else "  SLOW")
        print(f"{name:<22}{t['cold']:>8.3f}{t['cold_max']:>8.3f}{t['warm']:>8.3f}"
              f"{queries.get(name, float('nan')):>8.3f}{(f'{target:.1f}' if target else '-'):>8}{verdict}")


if __name__ == "__main__":
    main()
