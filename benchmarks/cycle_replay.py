"""Scheduled cycles one bucket at a time against one full detect, on a backfilled demo world.

    .venv/bin/python benchmarks/cycle_replay.py --folder /tmp/s5dd/seed3 [--start 2026-08-30] [--end 2026-09-29]
        [--step day|hour] [--metric NAME ...]

The folder is a demo project already backfilled (benchmarks/demo_detection.py --workdir
leaves one per seed). Its store is copied twice, without detection results:
- *cycles*: `detect_metric` as of every step from --start to --end, each writing its
  results, as a scheduled cycle does (today a cycle re-judges the whole window);
- *full*: one `detect_metric` as of --end.

Reported per metric:
- the stored incidents of both copies: the same (id, end, status, resolution), only in
  one, or the same id with another end/status. Only-in-cycles rows are what cycles leave
  behind that one full detect never shows (open incidents a later cycle withdrew);
- *revised verdicts*: for each cycle, which (slice, direction) are in an incident on its
  newest bucket, against what the full detect says about that bucket. A full detect that
  revises the newest bucket's verdict once later buckets are seen is what no cycle that
  keeps its stored verdicts for older buckets can reproduce.
"""
from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.config import detect_memory_limit, load_config  # noqa: E402
from monitor.detect.run_detection import detect_metric  # noqa: E402
from monitor.engine import GRAIN_STEP  # noqa: E402
from monitor.pipeline import detection_order, load_project_catalog  # noqa: E402
from monitor.store import Store  # noqa: E402

TABLES = ("incidents", "expectations", "change_points")
FIELDS = "incident_id, metric, slice, direction, start_ts, end_ts, status, resolution"


def fresh_copy(store_path: Path, target: Path) -> Store:
    shutil.copy(store_path, target)
    con = duckdb.connect(str(target))
    for table in TABLES:
        con.execute(f"DELETE FROM {table}")
    con.close()
    return Store(target)


def on_bucket(rows, bucket: dt.datetime, step: dt.timedelta) -> set[tuple[str, str]]:
    """(slice, direction) of the incidents that cover `bucket`."""
    return {(r["slice"], r["direction"]) for r in rows
            if r["start_ts"] <= bucket and (r["end_ts"] is None or bucket < r["end_ts"])}


def stored(store: Store, metric: str) -> dict[str, tuple]:
    with store.connect(read_only=True) as con:
        return {r[0]: r[1:] for r in con.execute(f"SELECT {FIELDS} FROM incidents WHERE metric = ?", [metric]).fetchall()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--start", type=dt.datetime.fromisoformat, default=dt.datetime(2026, 8, 30))
    parser.add_argument("--end", type=dt.datetime.fromisoformat, default=dt.datetime(2026, 9, 29))
    parser.add_argument("--step", choices=("day", "hour"), default="day")
    parser.add_argument("--metric", action="append", default=None)
    args = parser.parse_args(argv)

    config = load_config(args.folder / "monitor.toml")
    catalog = load_project_catalog(config)
    metrics = [m for m in detection_order(catalog.select(args.metric)) if m.grain == args.step]
    limit = detect_memory_limit(config)
    step = GRAIN_STEP[args.step]
    with tempfile.TemporaryDirectory(dir=args.folder) as tmp:
        cycles = fresh_copy(config.store_path, Path(tmp) / "cycles.duckdb")
        full = fresh_copy(config.store_path, Path(tmp) / "full.duckdb")
        newest: dict[str, dict[dt.datetime, set]] = defaultdict(dict)
        seconds = 0.0
        now, runs = args.start, 0
        while now <= args.end:
            for m in metrics:
                t0 = time.process_time()
                result = detect_metric(cycles, m, now=now, memory_limit=limit)
                seconds += time.process_time() - t0
                newest[m.name][now - step] = on_bucket(result.incidents, now - step, step)
            now += step
            runs += 1
        t0 = time.process_time()
        finals = {m.name: detect_metric(full, m, now=args.end, memory_limit=limit).incidents for m in metrics}
        full_seconds = time.process_time() - t0
        print(f"{runs} cycles ({args.step}s {args.start:%Y-%m-%d %H:%M} .. {args.end:%Y-%m-%d %H:%M}) of "
              f"{len(metrics)} metric(s): {seconds:.1f} s CPU; one full detect as of the end: {full_seconds:.1f} s CPU")
        print(f"{'metric':<28} {'full':>5} {'cycles':>6} {'same':>5} {'only cycles':>11} {'only full':>9} "
              f"{'changed':>7} {'revised newest':>15}")
        totals = defaultdict(int)
        for m in metrics:
            a, b = stored(cycles, m.name), stored(full, m.name)
            same = sum(1 for i in a if i in b and a[i] == b[i])
            changed = sum(1 for i in a if i in b and a[i] != b[i])
            only_a, only_b = [i for i in a if i not in b], [i for i in b if i not in a]
            revised = sum(1 for bucket, seen in newest[m.name].items()
                          if seen != on_bucket(finals[m.name], bucket, step))
            row = dict(full=len(b), cycles=len(a), same=same, only_a=len(only_a), only_b=len(only_b),
                       changed=changed, revised=revised)
            for k, v in row.items():
                totals[k] += v
            print(f"{m.name:<28} {len(b):5d} {len(a):6d} {same:5d} {len(only_a):11d} {len(only_b):9d} {changed:7d} "
                  f"{revised:8d}/{len(newest[m.name]):<6d}")
            for i in only_a[:3]:
                print(f"    only in cycles: {a[i][1] or 'total'} {a[i][2]} {a[i][3]:%Y-%m-%d %H:%M} status {a[i][5]}/{a[i][6]}")
        print(f"{'all':<28} {totals['full']:5d} {totals['cycles']:6d} {totals['same']:5d} {totals['only_a']:11d} "
              f"{totals['only_b']:9d} {totals['changed']:7d} {totals['revised']:8d}/{runs * len(metrics):<6d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
