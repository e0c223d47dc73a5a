"""Engine benchmark: time per demo metric on DuckDB and on Spark (local mode), same data, same rows.

Builds the demo world (``monitor.demo.world.build_world``), exports its tables to Parquet
with DuckDB's ``COPY ... (FORMAT parquet)``, then runs every metric in ``metrics/`` on

- ``duckdb``          the embedded default, on the DuckDB file;
- ``duckdb-parquet``  DuckDB on the Parquet files (the input Spark reads);
- ``spark``           the Spark engine, local mode, on the Parquet files;

for two windows: ``backfill`` (the whole range in one query) and ``latest`` (the last
bucket: a day, or an hour for hourly metrics, as a scheduled run computes). Each cell is the
median of ``--repeat`` warm runs; Spark's first (cold) query and its start-up are reported
apart. The leaf rows of every engine are checked equal to DuckDB's before timing counts.

    .venv/bin/python benchmarks/engines.py [--days 120] [--scale 1.0] [--master local[2]] [--repeat 3]
                                           [--dir /tmp/monitor-bench-engines] [--json results.json]

Needs the spark extra and Java (scripts/spark-deps.sh).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from monitor.catalog import load_catalog  # noqa: E402
from monitor.config import SourceConfig  # noqa: E402
from monitor.engine.duckdb_engine import DuckDBEngine  # noqa: E402
from monitor.engine.spark_engine import SparkEngine, export_parquet  # noqa: E402
from monitor.engine.windows import GRAIN_STEP, Window  # noqa: E402

START = dt.date(2026, 6, 1)


def build_data(folder: Path, *, days: int, scale: float, seed: int) -> tuple[Path, dict[str, Path], dict]:
    """The demo world in DuckDB and Parquet under folder, rebuilt only when the parameters change."""
    from monitor.demo.world import build_world

    stamp = folder / "stamp.json"
    params = {"days": days, "scale": scale, "seed": seed, "start": START.isoformat()}
    db = folder / "source.duckdb"
    if stamp.exists() and json.loads(stamp.read_text()).get("params") == params and db.exists():
        info = json.loads(stamp.read_text())
        return db, {k: Path(v) for k, v in info["views"].items()}, info
    folder.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    world = build_world(db, seed=seed, days=days, start=START, scale=scale)
    views = export_parquet(db, folder / "parquet")
    info = {"params": params, "rows": world["rows"], "views": {k: str(v) for k, v in views.items()},
            "build_seconds": round(time.perf_counter() - began, 1),
            "parquet_mb": round(sum(p.stat().st_size for p in views.values()) / 2**20, 1)}
    stamp.write_text(json.dumps(info, indent=2))
    return db, views, info


def same_rows(metric, left, right) -> bool:
    keys = ["ts", *metric.dimensions]
    order = [(k, "ascending") for k in keys]
    if left.num_rows != right.num_rows or left.column_names != right.column_names:
        return False
    left, right = left.sort_by(order), right.sort_by(order)
    return left.select(keys).equals(right.select(keys)) and all(
        np.allclose(left.column(m).to_numpy(), right.column(m).to_numpy(), rtol=1e-9, atol=1e-9)
        for m in metric.measures)


def timed(fn, repeat: int) -> tuple[float, object]:
    runs, result = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - began)
    return statistics.median(runs), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "monitor-bench-engines")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    db, views, info = build_data(args.dir, days=args.days, scale=args.scale, seed=args.seed)
    print(f"demo data: {args.days} days, scale {args.scale}: "
          + ", ".join(f"{k} {v:,}" for k, v in info["rows"].items())
          + f"; Parquet {info['parquet_mb']} MB", flush=True)
    catalog = load_catalog(ROOT / "metrics")
    if catalog.problems:
        print("metric catalog problems:\n" + "\n".join(map(str, catalog.problems)), file=sys.stderr)
        return 1
    begin = dt.datetime.combine(START, dt.time())
    end = begin + dt.timedelta(days=args.days)

    def windows(metric) -> dict[str, Window]:
        return {"backfill": Window(begin, end), "latest": Window(end - GRAIN_STEP[metric.grain], end)}

    spark_options = {"master": args.master, "conf": {"spark.sql.shuffle.partitions": 2 * _cores(args.master)}}
    began = time.perf_counter()
    spark = SparkEngine(SourceConfig(None, views, "spark", spark_options))
    spark.session()
    spark_start = time.perf_counter() - began
    results: list[dict] = []
    try:
        with DuckDBEngine(SourceConfig(db)) as native, DuckDBEngine(SourceConfig(None, views)) as on_parquet:
            engines = {"duckdb": native, "duckdb-parquet": on_parquet, "spark": spark}
            cold_spark = None
            for name, metric in sorted(catalog.metrics.items()):
                for label, window in windows(metric).items():
                    reference = native.run(metric, window)
                    row = {"metric": name, "window": label, "leaves": reference.num_rows}
                    for engine_name, engine in engines.items():
                        if engine_name == "spark" and cold_spark is None:
                            t0 = time.perf_counter()
                            engine.run(metric, window)
                            cold_spark = {"metric": name, "window": label,
                                          "seconds": round(time.perf_counter() - t0, 3)}
                        seconds, table = timed(lambda e=engine, m=metric, w=window: e.run(m, w), args.repeat)
                        if not same_rows(metric, table, reference):
                            print(f"MISMATCH: {name} {label} on {engine_name}", file=sys.stderr)
                            return 1
                        row[engine_name] = round(seconds, 3)
                    results.append(row)
                    print(f"  {name:<30} {label:<9} {row['leaves']:>7} leaves  "
                          + "  ".join(f"{e} {row[e]:7.3f}s" for e in engines), flush=True)
    finally:
        spark.close()

    totals = {e: round(sum(r[e] for r in results), 2) for e in ("duckdb", "duckdb-parquet", "spark")}
    print(f"\nSpark ({args.master}) session start {spark_start:.1f}s; first query (cold) "
          f"{cold_spark['seconds']:.2f}s ({cold_spark['metric']}, {cold_spark['window']}); all leaf rows equal.")
    print(_table(results, totals))
    if args.json:
        args.json.write_text(json.dumps({
            "data": info, "master": args.master, "repeat": args.repeat, "spark_start_seconds": round(spark_start, 2),
            "spark_cold_query": cold_spark, "results": results, "totals": totals,
            "load_average": os.getloadavg(), "cores": os.cpu_count()}, indent=2))
    return 0


def _cores(master: str) -> int:
    """Cores of a local[N] master (local[*]: this machine's); 2 for anything else."""
    inside = master[master.find("[") + 1:master.find("]")] if "[" in master else "1"
    if inside == "*":
        return os.cpu_count() or 2
    return max(1, int(inside)) if inside.isdigit() else 2


def _table(results: list[dict], totals: dict[str, float]) -> str:
    head = "| metric | window | leaves | duckdb (s) | duckdb-parquet (s) | spark (s) | spark / duckdb |"
    lines = [head, "|" + "---|" * 7]
    for r in results:
        ratio = r["spark"] / r["duckdb"] if r["duckdb"] else float("inf")
        lines.append(f"| {r['metric']} | {r['window']} | {r['leaves']:,} | {r['duckdb']:.3f} | "
                     f"{r['duckdb-parquet']:.3f} | {r['spark']:.3f} | {ratio:.0f}x |")
    lines.append(f"| **total** | | | {totals['duckdb']:.2f} | {totals['duckdb-parquet']:.2f} | {totals['spark']:.2f} | "
                 f"{totals['spark'] / totals['duckdb']:.0f}x |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
