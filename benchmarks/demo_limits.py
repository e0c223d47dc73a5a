"""How often could ANY detector find each injected demo incident within one bucket?

    .venv/bin/python benchmarks/demo_limits.py [--seeds 1 2 3 4 5 6 7] [--workdir /tmp/demo-seeds] [--sims 2000]

Issue 3 asks that every injected rate incident be detected within one bucket of its start.
Some injected incidents are small next to the noise of their segment; this measures how
often an *oracle* would succeed, to tell a detector's misses from the information limit.

The oracle knows, per seed and (incident, metric):
- the exact segment and the exact window of the incident (``[start, end)``, at most
  ``accept_after`` buckets), so it makes one test instead of scanning slices and windows;
- the segment's rate before (pooled over the 28 days before the start) and during the
  incident (pooled over the window), both taken from that seed's data, and the total's
  seasonal shape (weekday, or hour of the week), as the follows test uses it.

It then draws ``--sims`` fresh noise samples of the segment (binomial counts for ratio
metrics on the seed's own volumes, Poisson for sums) over the week before the start and
the window, and counts a hit when both hold:
- *found*: the window's count against the known baseline rate reaches a signed
  likelihood-ratio z of 4 (the medium threshold), with no widening for multiple tests;
- *within one bucket*: the maximum-likelihood change point, with both rates known (the
  best a change-point estimate can do), is within one bucket of the true start.

It is an upper bound: a real detector does not know the segment, the window or the rates.
The actual column re-runs detection on the same stores (``benchmarks/demo_detection.py``
builds them; this script builds any that are missing) and scores it with
``monitor/demo/evaluate.py``. Mix incidents are left out: their segment's rate does not move.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from demo_detection import run_seed  # noqa: E402

from monitor.config import load_config  # noqa: E402
from monitor.detect.follows import BASELINE_DAYS, seasonal_shape, segment_series  # noqa: E402
from monitor.detect.options import BASE_THRESHOLD, effective_period  # noqa: E402
from monitor.detect.options import DetectOptions  # noqa: E402
from monitor.engine import GRAIN_STEP  # noqa: E402
from monitor.pipeline import load_project_catalog  # noqa: E402
from monitor.store import Store  # noqa: E402

LEAD_IN_DAYS = 7  # the change point is searched from a week before the start


def oracle(count: np.ndarray, volume: np.ndarray, total: tuple[np.ndarray, np.ndarray], *, start: int, end: int,
           per_day: int, period: int | None, ratio: bool, sims: int, rng: np.random.Generator) -> dict | None:
    """Probability that the oracle finds the incident [start, end) and places its start
    within one bucket, from ``sims`` noise draws at the seed's volumes and rates."""
    before = slice(max(start - BASELINE_DAYS * per_day, 0), start)
    shape = seasonal_shape(*total, period, before)
    mass = volume * shape
    m0, m1 = mass[before].sum(), mass[start:end].sum()
    if m0 <= 0 or m1 <= 0 or count[before].sum() <= 0:
        return None
    p0, p1 = count[before].sum() / m0, count[start:end].sum() / m1
    lo = max(start - LEAD_IN_DAYS * per_day, 0)
    span = np.arange(lo, end)
    lam0 = np.clip(p0 * shape[span], 1e-12, 1 - 1e-9 if ratio else None)
    lam1 = np.clip(p1 * shape[span], 1e-12, 1 - 1e-9 if ratio else None)
    mean = np.where(span >= start, lam1, lam0)
    n = volume[span]
    expected0 = (n * lam0)[span >= start].sum()
    if ratio:
        draws = rng.binomial(n.astype(np.int64), np.clip(mean, 0, 1), size=(sims, span.size)).astype(float)
        # log-likelihood ratio per bucket of "changed" vs "not yet"
        step = draws * np.log(lam1 / lam0) + (n - draws) * np.log((1 - lam1) / (1 - lam0))
    else:
        draws = rng.poisson(mean * n, size=(sims, span.size)).astype(float)
        step = draws * np.log(lam1 / lam0) - n * (lam1 - lam0)
    # MLE of the change point with both rates known: argmax over tau of the sum from tau on
    tail = np.cumsum(step[:, ::-1], axis=1)[:, ::-1]
    tau = lo + np.argmax(tail, axis=1)
    within = np.abs(tau - start) <= 1
    k = draws[:, span >= start].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = 2 * (np.where(k > 0, k * np.log(k / expected0), 0.0) - (k - expected0))
        if ratio:  # the binomial likelihood ratio (>= the Poisson one at rates like 10 %)
            trials = n[span >= start].sum()
            g = 2 * (np.where(k > 0, k * np.log(k / expected0), 0.0)
                     + np.where(trials - k > 0, (trials - k) * np.log((trials - k) / (trials - expected0)), 0.0))
    z = np.sign(k - expected0) * np.sqrt(np.maximum(g, 0))
    sign = 1 if p1 >= p0 else -1
    found = sign * z >= BASE_THRESHOLD
    per_bucket_sd = abs(p1 - p0) * np.mean(n[span >= start] * shape[span][span >= start]) / math.sqrt(
        max(np.mean(n[span >= start] * lam0[span >= start]), 1e-12))
    return {"hit": float(np.mean(found & within)), "found": float(np.mean(found)), "within": float(np.mean(within)),
            "shift_sd_per_bucket": float(per_bucket_sd), "rates": (float(p0), float(p1))}


def seed_limits(folder: Path, seed: int, sims: int) -> list[dict]:
    scored, _, _ = run_seed(folder, seed, reuse=True)
    config = load_config(folder / "monitor.toml")
    catalog = load_project_catalog(config)
    truth = json.loads((folder / "ground_truth.json").read_text())
    store = Store(config.store_path)
    actual = {(o.truth_id, o.metric): o.detected for o in scored.outcomes}
    rng = np.random.default_rng(seed)
    world_start, world_end = pd.Timestamp(truth["start"]), pd.Timestamp(truth["end"])
    rows = []
    for event in truth["incidents"]:
        if event["type"] != "rate":
            continue
        for name in event["metrics"]:
            metric = catalog.metrics[name]
            step = GRAIN_STEP[metric.grain]
            axis = pd.date_range(world_start, world_end - step, freq=step)
            per_day = max(int(dt.timedelta(days=1) / step), 1)
            options = DetectOptions.from_metric(metric)
            segment = {k: v for k, v in event["segment"].items() if k in metric.dimensions}
            count, volume = segment_series(store, metric, segment, axis)
            total = segment_series(store, metric, {}, axis)
            if metric.kind != "ratio":
                total = (total[0], np.ones(len(axis)))
            start = int(axis.searchsorted(pd.Timestamp(event["start"])))
            stop = len(axis) if event["end"] is None else int(axis.searchsorted(pd.Timestamp(event["end"])))
            end = min(stop, start + options.accept_after)
            period = effective_period(options.period, BASELINE_DAYS * per_day)
            result = oracle(count, volume, total, start=start, end=end, per_day=per_day, period=period,
                            ratio=metric.kind == "ratio", sims=sims, rng=rng)
            if result is None:
                continue
            rows.append({"event": event["id"], "metric": name, "seed": seed, "actual": actual.get((event["id"], name)),
                         **result})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6, 7])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/monitor-demo-seeds"))
    parser.add_argument("--sims", type=int, default=2000)
    args = parser.parse_args()
    by_pair: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for seed in args.seeds:
        rows = seed_limits(args.workdir / f"seed{seed}", seed, args.sims)
        for row in rows:
            by_pair[(row["event"], row["metric"])].append(row)
        print(f"seed {seed}: done", flush=True)
    print()
    print(f"{'incident':22} {'metric':28} {'sd/bucket':>9} {'oracle found':>12} {'oracle ±1':>9} "
          f"{'oracle hits':>11} {'actual':>6}  per seed: oracle hit % (actual)")
    expected_total = actual_total = pairs = 0
    for (event, metric), rows in by_pair.items():
        expected = sum(r["hit"] for r in rows)
        actual = sum(bool(r["actual"]) for r in rows)
        expected_total, actual_total, pairs = expected_total + expected, actual_total + actual, pairs + len(rows)
        per_seed = " ".join(f"{100 * r['hit']:.0f}({'y' if r['actual'] else 'n'})" for r in rows)
        print(f"{event:22} {metric:28} {np.mean([r['shift_sd_per_bucket'] for r in rows]):9.2f} "
              f"{np.mean([r['found'] for r in rows]):12.2f} {np.mean([r['within'] for r in rows]):9.2f} "
              f"{expected:6.1f}/{len(rows):<4} {actual:3d}/{len(rows):<2}  {per_seed}")
    print(f"\nrate (incident, metric) pairs: oracle expects {expected_total:.1f}/{pairs} hits; "
          f"the detector scored {actual_total}/{pairs}")
    every = {seed: float(np.prod([r["hit"] for rows in by_pair.values() for r in rows if r["seed"] == seed]))
             for seed in args.seeds}
    print("chance that the oracle hits every pair of a seed: "
          + ", ".join(f"seed {seed} {100 * p:.0f} %" for seed, p in every.items()))
    print("sd/bucket: the rate change per bucket in the segment, in sd of one bucket's count (mean over seeds).")


if __name__ == "__main__":
    main()
