"""Compute benchmark (issue 2): our backfill vs the same SQL run raw in DuckDB.

    .venv/bin/python benchmarks/compute.py [--rows 50000000] [--demo-dir /tmp/bench-demo]

1. Demo metrics: `monitor`'s backfill of every demo metric over the whole demo range
   (chunked windows, checks, store writes) vs executing each metric's SQL once over
   the same range in the same process and fetching the rows. Ratio = ours / raw.
2. Throughput: a generated orders table of --rows rows; backfill of a fraud-rate
   metric over it, reported as source rows per second, beside the raw query.
Both sides run in this process, alternating, best of --repeat, since the machine is shared.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.catalog import load_catalog, parse_metric  # noqa: E402
from monitor.config import ProjectConfig, SourceConfig  # noqa: E402
from monitor.pipeline import backfill_plan, compute  # noqa: E402
from monitor.store import Store  # noqa: E402

ORDERS_METRIC = """\
/* ---
name: big_fraud_rate
kind: ratio
grain: day
dimensions: [country, channel, device_os, payment_method]
schedule: "0 6 * * *"
--- */
SELECT date_trunc('day', created_at) AS ts, country, channel, device_os, payment_method,
       count(*) FILTER (WHERE is_fraud) AS numerator, count(*) AS denominator
FROM orders WHERE created_at >= $start AND created_at < $end GROUP BY ALL
"""


def project(folder: Path, source: Path, metrics_dir: Path) -> ProjectConfig:
    return ProjectConfig(root=folder, name="bench", metrics_dir=metrics_dir, store_path=folder / "store.duckdb",
                         source=SourceConfig(database=source), sections={})


def raw(source: Path, metrics, start, end) -> float:
    t0 = time.perf_counter()
    con = duckdb.connect(str(source), read_only=True)
    for m in metrics:
        con.execute(m.sql, {"start": start, "end": end}).to_arrow_table()
    con.close()
    return time.perf_counter() - t0


def ours(config: ProjectConfig, metrics, start, end) -> float:
    config.store_path.unlink(missing_ok=True)
    t0 = time.perf_counter()
    result = compute(config, backfill_plan(metrics, start, end), trigger="backfill", store=Store(config.store_path))
    elapsed = time.perf_counter() - t0
    assert not result.failures, result.failures
    return elapsed


def best(fn, repeat: int) -> float:
    return min(fn() for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=50_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--demo-dir", type=Path, default=None)
    args = parser.parse_args()
    from monitor.demo.project import REPO_METRICS
    from monitor.demo.world import build_world

    work = Path(tempfile.mkdtemp(prefix="monitor-bench-"))
    demo_dir = args.demo_dir or work / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    world = build_world(demo_dir / "source.duckdb")
    print(f"demo world: {sum(world['rows'].values()):,} rows in {time.perf_counter() - t0:.1f}s")
    start, end = dt.datetime.fromisoformat(world["start"]), dt.datetime.fromisoformat(world["end"])
    catalog = load_catalog(REPO_METRICS)
    metrics = catalog.select(None)
    config = project(demo_dir, demo_dir / "source.duckdb", REPO_METRICS)
    t_raw, t_ours = [], []
    for _ in range(args.repeat):  # alternate so both sides see the same machine load
        t_raw.append(raw(config.source.database, metrics, start, end))
        t_ours.append(ours(config, metrics, start, end))
    print(f"demo metrics ({len(metrics)}): raw SQL {min(t_raw):.2f}s, monitor backfill {min(t_ours):.2f}s, "
          f"ratio {min(t_ours) / min(t_raw):.2f}x (goal <= 1.3x)")

    big = work / "orders.duckdb"
    t0 = time.perf_counter()
    con = duckdb.connect(str(big))
    con.execute(f"""
        CREATE TABLE orders AS
        SELECT TIMESTAMP '2026-01-01' + to_microseconds((i * (365 * 86400000000.0 / {args.rows}))::BIGINT) AS created_at,
               ['US','GB','DE','FR','BR','IN','MX','NG','ES','IT'][1 + (hash(i) % 10)::INT] AS country,
               ['web','app','marketplace'][1 + (hash(i + 1) % 3)::INT] AS channel,
               ['ios','android','windows','macos','other'][1 + (hash(i + 2) % 5)::INT] AS device_os,
               ['card','paypal','apple_pay','bank_transfer','bnpl'][1 + (hash(i + 3) % 5)::INT] AS payment_method,
               hash(i + 4) % 1000 < 6 AS is_fraud
        FROM range({args.rows}) t(i)""")
    con.close()
    print(f"generated {args.rows:,} orders in {time.perf_counter() - t0:.1f}s")
    metric, problems = parse_metric(ORDERS_METRIC, work / "big_fraud_rate.sql")
    assert not problems
    big_config = project(work, big, work)
    s, e = dt.datetime(2026, 1, 1), dt.datetime(2027, 1, 1)
    r_raw, r_ours = [], []
    for _ in range(args.repeat):
        r_raw.append(raw(big, [metric], s, e))
        r_ours.append(ours(big_config, [metric], s, e))
    print(f"{args.rows:,}-row orders: raw SQL {min(r_raw):.2f}s ({args.rows / min(r_raw) / 1e6:.1f} M rows/s), "
          f"monitor backfill {min(r_ours):.2f}s ({args.rows / min(r_ours) / 1e6:.1f} M rows/s), "
          f"ratio {min(r_ours) / min(r_raw):.2f}x")


if __name__ == "__main__":
    main()
