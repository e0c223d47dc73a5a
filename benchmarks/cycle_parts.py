"""What each part of one detection costs, and what a cycle resumed from stored judge state
would still have to pay (issue 16 item 4), on a backfilled project.

    .venv/bin/python benchmarks/cycle_parts.py --folder DIR --now 2026-04-01 [--metric NAME] [--horizon 7 30]

Runs `detect_metric` as of --now on a copy of the project's store (its results are thrown
away), in this process, timing each part on the process CPU clock (DuckDB's threads
included) by wrapping the module functions that do it:
- slices: `load_slices` (DuckDB: GROUPING SETS over the window, the pairs' sums, the leaf
  screen of every pair) and, inside it, the pair sums and the screen;
- mix test, change points (`find_batch` and the seasonal profile it is fitted on), the
  judge's loop over buckets (`judge`, both passes), incident rows (with `follows`), write.

Then, for each K of --horizon (the revision horizon: buckets a resumed cycle re-judges,
benchmarks/cycle_replay.py measures it), the parts a cycle from stored state keeps:
- loading the last K + 1 buckets of the total and one-dimension slices (one GROUPING SETS
  over that range only);
- the judge's loop for K + 1 buckets (its measured CPU per bucket stepped, times K + 1);
- the judge state a series would store (the arrays of its baseline, noise, tail
  histogram and CUSUM, captured from the run): bytes per series, fixed and per bucket kept.
The non-trailing parts (screen, change points, mix test) are listed beside them: a resumed
cycle that re-ran them over the window would pay them in full.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.config import detect_memory_limit, load_config  # noqa: E402
from monitor.detect import detectors, judge as judge_module, run_detection, slices  # noqa: E402
from monitor.detect.run_detection import DUCKDB_MIN_MEMORY, detect_metric  # noqa: E402
from monitor.detect.warmup import warmup_length  # noqa: E402
from monitor.engine import GRAIN_STEP  # noqa: E402
from monitor.pipeline import load_project_catalog  # noqa: E402
from monitor.store import Store  # noqa: E402

PARTS = [  # (module, function, label): inclusive CPU of each call
    (run_detection, "load_slices", "slices (DuckDB; pairs; screen)"),
    (slices, "_add_pairs", "  pair sums"),
    (slices, "code_leaves", "  screen: leaves numbered"),
    (slices, "_add_screened", "  screen: pairs tested"),
    (run_detection, "_mix_runs", "mix test"),
    (run_detection, "_judge", "judge passes (all)"),
    (detectors, "deseasonalise", "  change points: seasonal profile"),
    (detectors, "find_batch", "  change points: search"),
    (detectors, "judge", "  judge loop over buckets"),
    (detectors, "_series_result", "  segments and bands per series"),
    (run_detection, "_stage", "  bands staged (scratch file)"),
    (run_detection, "_rows", "incident rows (+ follows)"),
    (run_detection, "_write", "write (one transaction)"),
]


class Timer:
    def __init__(self):
        self.cpu: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.steps: list[int] = []  # buckets the judge loop stepped, per call
        self.states: list = []  # (baseline, cusum, buckets) of every judge call

    def wrap(self, module, name: str, label: str) -> None:
        inner = getattr(module, name)

        def timed(*args, **kwargs):
            t0 = time.process_time()
            try:
                return inner(*args, **kwargs)
            finally:
                self.cpu[label] += time.process_time() - t0
                self.calls[label] += 1
        setattr(module, name, timed)

    def capture_state(self) -> None:
        """Keep the judge state objects each `judge` call builds (its baseline from
        `initial_baseline`, its CUSUM from `Cusum.start`), to size them afterwards."""
        made = judge_module.initial_baseline
        cusum_class = judge_module.Cusum

        def baseline(*args, **kwargs):
            b = made(*args, **kwargs)
            self.states.append([b, None, 0])
            return b

        class Captured:  # judge only calls Cusum.start
            @staticmethod
            def start(*args, **kwargs):
                c = cusum_class.start(*args, **kwargs)
                self.states[-1][1] = c
                return c

        judge_module.initial_baseline = baseline
        judge_module.Cusum = Captured
        loop = detectors.judge  # the timed one (wrap runs first)

        def counted(obs, **kwargs):
            self.steps.append(max(obs.shape[1] - warmup_length(obs.shape[1], kwargs.get("period")), 0))
            out = loop(obs, **kwargs)
            self.states[-1][2] = obs.shape[1]
            return out
        detectors.judge = counted


def arrays_of(obj, seen=None) -> list[np.ndarray]:
    """Every numpy array reachable through dataclass fields and plain attributes."""
    seen = set() if seen is None else seen
    if obj is None or id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return [obj]
    fields = (vars(obj) if hasattr(obj, "__dict__") else
              {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)} if dataclasses.is_dataclass(obj) else {})
    return [a for v in fields.values() for a in arrays_of(v, seen)]


def state_bytes(states) -> tuple[float, float, int]:
    """(fixed bytes per series, bytes per series per bucket kept, series): arrays whose last
    axis is the window's buckets or days (the CUSUM's residual trail, per-day statistics)
    count per bucket, the rest (level, season, noise, tail histogram, sums) as fixed."""
    fixed = per_bucket = 0.0
    series = 0
    for baseline, cusum, n_buckets in states:
        series += baseline.level.shape[0]
        for a in arrays_of(baseline) + arrays_of(cusum):
            if a.ndim == 2 and n_buckets and a.shape[1] in (n_buckets, -(-n_buckets // 24)):
                per_bucket += a.nbytes / n_buckets
            else:
                fixed += a.nbytes
    return fixed / max(series, 1), per_bucket / max(series, 1), series


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--now", type=dt.datetime.fromisoformat, required=True)
    parser.add_argument("--metric", default=None, help="default: the first metric of the project")
    parser.add_argument("--horizon", type=int, nargs="+", default=[7, 30])
    args = parser.parse_args(argv)

    config = load_config(args.folder / "monitor.toml")
    catalog = load_project_catalog(config)
    metric = next(m for m in catalog.select([args.metric] if args.metric else None))
    limit = detect_memory_limit(config)
    step = GRAIN_STEP[metric.grain]
    timer = Timer()
    for module, name, label in PARTS:
        timer.wrap(module, name, label)
    timer.capture_state()
    with tempfile.TemporaryDirectory(dir=args.folder) as tmp:
        copy = Path(tmp) / "store.duckdb"
        shutil.copy(config.store_path, copy)
        store = Store(copy)
        t0 = time.process_time()
        result = detect_metric(store, metric, now=args.now, memory_limit=limit)
        total = time.process_time() - t0
        axis_len = int((args.now - (args.now - run_detection.HISTORY[metric.grain])) / step)
        with store.connect(read_only=True) as con:
            first, last = con.execute(f'SELECT min(ts), max(ts) FROM "leaves__{metric.name}" WHERE ts < ?',
                                      [args.now]).fetchone()
        n = min(axis_len, int((last - first) / step) + 1)
        print(f"{metric.name} as of {args.now:%Y-%m-%d %H:%M}: {result.series_checked:,} series x {n} buckets, "
              f"{len(result.incidents)} incidents; detect_metric {total:.1f} s CPU")
        print(f"{'part':<36} {'CPU s':>7} {'share':>6} {'calls':>6}")
        for _, _, label in PARTS:
            print(f"{label:<36} {timer.cpu[label]:7.2f} {timer.cpu[label] / total:6.1%} {timer.calls[label]:6d}")
        loop = timer.cpu["  judge loop over buckets"]
        # every call (a chunk of series, a pass) steps the window's buckets after its warm-up
        per_step = loop / max(np.mean(timer.steps) if timer.steps else 1, 1)
        print(f"judge loop: {len(timer.steps)} calls stepping {int(np.mean(timer.steps)) if timer.steps else 0} buckets"
              f" each; {per_step * 1000:.1f} ms CPU per bucket stepped (every series, both passes)")
        fixed, per_bucket, series = state_bytes(timer.states)
        print(f"judge state: {fixed:,.0f} bytes per series fixed + {per_bucket:,.1f} per series per bucket kept"
              f" ({series:,} series over the judge calls)")

        # a resumed cycle's own parts: the last K + 1 buckets of the total and one-dimension slices
        singles = dataclasses.replace(metric, detect=dataclasses.replace(metric.detect, max_slice_depth=min(
            metric.detect.max_slice_depth, 1)))
        nontrailing = sum(timer.cpu[k] for k in ("  pair sums", "  screen: leaves numbered", "  screen: pairs tested",
                                                 "mix test", "  change points: seasonal profile",
                                                 "  change points: search"))
        print(f"non-trailing parts a resumed cycle must redo, store or make incremental (pairs, screen, mix, "
              f"change points): {nontrailing:.2f} s CPU = {nontrailing / total:.1%} of detect")
        print(f"{'K':>4} {'load K+1 (1-dim)':>16} {'judge K+1':>10} {'state MB':>9} {'resumed':>8} {'/detect':>8}"
              f" {'+ non-trailing':>15}")
        for k in args.horizon:
            with store.connect(read_only=True) as con:
                con.execute(f"SET memory_limit = '{max(limit // 2, DUCKDB_MIN_MEMORY) // 2**20}MiB'")
                t0 = time.process_time()
                _, part = slices.build_slices(con, singles, start=args.now - (k + 1) * step, end=args.now, step=step,
                                              budget_bytes=limit // 2)
                load = time.process_time() - t0
            judge_k = per_step * (k + 1)
            mb = series * (fixed + per_bucket * k) / 2**20
            resumed = load + judge_k
            print(f"{k:4d} {load:16.2f} {judge_k:10.2f} {mb:9.1f} {resumed:8.2f} {resumed / total:8.1%}"
                  f" {(resumed + nontrailing) / total:15.1%}   ({len(part):,} series loaded)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
