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
  keeps its stored verdicts for older buckets can reproduce;
- *revision depth*: between two consecutive cycles, the oldest bucket (before the first
  cycle's end) whose verdict the second cycle changed, in buckets back from the first
  cycle's newest bucket (1 = its newest bucket). A cycle that resumed a judge state stored
  K buckets back could only give a full detect's verdicts if K covers every such depth
  (a lower bound: the state at K back must also be the same, not only the verdicts), and
  a change near the window's start (the HISTORY window slides with the cycle once the
  stored history is longer) counts as deep as it is. The cause is the slice kind (total,
  one dimension, pair) and what changed: a verdict dated back (an incident found later,
  with a start before the previous end), or one withdrawn/moved.
"""
from __future__ import annotations

import argparse
import math
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


def covered(rows, before: dt.datetime, step: dt.timedelta) -> dict[tuple[str, str], set[dt.datetime]]:
    """(slice, direction) -> the buckets before `before` its incidents cover."""
    out: dict[tuple[str, str], set[dt.datetime]] = defaultdict(set)
    for r in rows:
        t = r["start_ts"]
        end = before if r["end_ts"] is None else min(r["end_ts"], before)
        while t < end:
            out[(r["slice"], r["direction"])].add(t)
            t += step
    return out


def revision_depths(earlier, later, before: dt.datetime, step: dt.timedelta) -> list[tuple[int, str, str]]:
    """Per (slice, direction) whose verdict on a bucket before `before` differs between the
    incident rows `earlier` and `later`: (depth in buckets back from the newest bucket
    before `before`, the slice, "dated back" when `later` covers a bucket `earlier` did not,
    else "withdrawn")."""
    a, b = covered(earlier, before, step), covered(later, before, step)
    out = []
    for key in set(a) | set(b):
        gained, lost = b.get(key, set()) - a.get(key, set()), a.get(key, set()) - b.get(key, set())
        if gained or lost:
            oldest = min(gained | lost)
            out.append((int((before - oldest) / step), key[0], "dated back" if oldest in gained else "withdrawn"))
    return out


def slice_kind(label: str) -> str:
    return "total" if not label else ("pair" if "&" in label else "one dimension")


def depth_report(depths: list[tuple[str, int, str, str]], unit: str) -> None:
    """Revision depths per metric: how many, the deepest, and the buckets back K must
    reach to cover 50/90/100 % of them, with the deepest causes."""
    if not depths:
        print("revision depth: no verdict on an earlier bucket changed between consecutive cycles")
        return
    print(f"revision depth (buckets back from the previous cycle's newest {unit}; K must cover it):")
    print(f"{'metric':<28} {'revised':>7} {'p50':>5} {'p90':>5} {'max':>5}   deepest (kind, what)")
    by_metric: dict[str, list] = defaultdict(list)
    for metric, depth, label, what in depths:
        by_metric[metric].append((depth, label, what))
    for metric in [*sorted(by_metric), "all"]:
        rows = sorted(d for m, *d in depths) if metric == "all" else sorted(by_metric[metric])
        ks = sorted(d[0] for d in rows)
        q = lambda p: ks[min(len(ks) - 1, int(math.ceil(p * len(ks))) - 1)]  # noqa: E731
        deepest = rows[-1]
        print(f"{metric:<28} {len(ks):7d} {q(0.5):5d} {q(0.9):5d} {ks[-1]:5d}   "
              f"{slice_kind(deepest[1])}, {deepest[2]} ({deepest[1] or 'total'})")
    kinds: dict[tuple[str, str], list[int]] = defaultdict(list)
    for _, depth, label, what in depths:
        kinds[(slice_kind(label), what)].append(depth)
    print("  by cause: " + "; ".join(f"{k} {w}: {len(v)} (max {max(v)})" for (k, w), v in sorted(kinds.items())))


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
        previous: dict[str, tuple[dt.datetime, list]] = {}
        depths: list[tuple[str, int, str, str]] = []
        seconds = 0.0
        now, runs = args.start, 0
        while now <= args.end:
            for m in metrics:
                t0 = time.process_time()
                result = detect_metric(cycles, m, now=now, memory_limit=limit)
                seconds += time.process_time() - t0
                newest[m.name][now - step] = on_bucket(result.incidents, now - step, step)
                if m.name in previous:
                    before, rows = previous[m.name]
                    depths += [(m.name, *d) for d in revision_depths(rows, result.incidents, before, step)]
                previous[m.name] = (now, result.incidents)
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
        depth_report(depths, args.step)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
