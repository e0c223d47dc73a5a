"""Does the spike band keep its promise on real series? Measured against promised, by age.

For every NAB series (``nab.py``'s data and aggregation), the detector's scores outside the
labelled windows (a day either side left out) are read as a live run would have seen them:
the first three weeks from a run on the first 503 hours (daily period, as the replay then),
the rest from a run on the whole series (weekly period). Per age band (days 1-7, 8-21,
later) it prints:

- *promised*: the rate per judged hour the threshold promises under a Gaussian tail
  (two-sided), and per series-month;
- *measured*: hours with |score| >= threshold, and runs of them counted once (a run of
  hours is one page);
- *own tail*: the rate the series' own Generalized Pareto tail (``tails.gpd_fit``, fitted
  to its |scores| from day 8 on) gives beyond the threshold: what the band really promises;
  its shape xi per category (xi > 0: heavier than exponential);
- *proxy*: windows hit and false starts, counting the segment starts of those two runs as
  pages (not the live replay of ``nab.py``: seconds instead of minutes, close to it).

``python benchmarks/nab_calibration.py [--data DIR] [--series GLOB] [--jobs N] [--sensitivity S]``
"""
from __future__ import annotations

import argparse
import collections
import math
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nab  # noqa: E402

from monitor.detect.tails import TailHistory, gpd_fit, gpd_rate  # noqa: E402

PREFIX = 503  # hours judged with the daily period in the replay (the weekly one needs 3 weeks)
AGES = (("days 1-7", 0, 7), ("days 8-21", 7, 21), ("later", 21, 10**6))
MARGIN = 24  # hours either side of a window left out of the anomaly-free stretches


def _norm_sf(x: float) -> float:
    return 0.5 * math.erfc(x / math.sqrt(2.0))


def one(args) -> dict:
    s, sensitivity = args
    full = nab.detect(s.hourly, sensitivity=sensitivity)
    thr = float(full.params.get("threshold"))
    z = np.abs(full.score)
    n = z.size
    starts = [g.start for g in full.segments if g.start >= PREFIX or n <= PREFIX]
    if n > PREFIX:
        young = nab.detect(s.hourly[:PREFIX], sensitivity=sensitivity)
        z[:PREFIX] = np.abs(young.score)
        starts += [g.start for g in young.segments]
    quiet = np.ones(n, dtype=bool)
    for a, b in s.windows:
        h = np.flatnonzero((s.stamp >= a) & (s.stamp <= b))
        if h.size:
            quiet[max(h[0] - MARGIN, 0): h[-1] + MARGIN + 1] = False
    ok = np.isfinite(z) & quiet
    over = ok & (z >= thr)
    first = over & ~np.concatenate([[False], over[:-1]])  # a run of hours counts once
    day = np.arange(n) // 24
    out = {"name": s.name, "threshold": thr}
    for label, lo, hi in AGES:
        m = ok & (day >= lo) & (day < hi)
        out[label] = (int(m.sum()), int(over[m].sum()), int(first[m].sum()))
    # the series' own tail, from day 8 on (the young part is judged by other runs)
    tail = ok & (day >= 7)
    out["own"] = (math.nan, math.nan, 0)
    if tail.sum() >= 200:
        counts = TailHistory.from_residuals(z[tail][None, :]).counts
        xi = float(gpd_fit(counts)[5][0])
        out["own"] = (float(gpd_rate(counts, np.array([thr]))[0]), xi, int(tail.sum()))
    probation = min(int(0.15 * s.timestamps.size), 750)
    hit, false = set(), 0
    for h in starts:
        rec = s.stamp[h]
        if rec < probation:
            continue
        inside = [i for i, (a, b) in enumerate(s.windows) if a <= rec <= b]
        hit.update(inside)
        false += not inside
    out["proxy"] = (len(hit), len(s.windows), false)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=nab.DEFAULT_DATA)
    parser.add_argument("--series", default="*", help="glob on category/file.csv")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--sensitivity", type=nab.sensitivity_arg, default="medium")
    a = parser.parse_args(argv)
    t0 = time.time()
    series = nab.load(a.data, a.series)
    with multiprocessing.get_context("fork").Pool(a.jobs) as pool:
        res = pool.map(one, [(s, a.sensitivity) for s in series], chunksize=1)
    thr = res[0]["threshold"]
    promised = 2.0 * _norm_sf(thr)
    per_month = 24 * nab.DAYS_PER_MONTH
    print(f"sensitivity {a.sensitivity}: threshold {thr:.3f} promises {promised:.2e} per hour "
          f"= {promised * per_month:.4f} per series-month (Gaussian tail, two-sided)")
    groups = collections.defaultdict(list)
    for r in res:
        groups[r["name"].split("/")[0]].append(r)
    groups["all"] = res
    head = "".join(f" | {label:>26s}" for label, _, _ in AGES)
    print(f"{'set':18s}{head} | own tail: rate   per mo   xi | proxy hit  false")
    print(f"{'':18s}" + " | hours  runs/mo  rate/hour" * len(AGES))
    for name in sorted(groups, key=lambda g: (g == "all", g)):
        rows = groups[name]
        cells = []
        for label, _, _ in AGES:
            hours = sum(r[label][0] for r in rows)
            runs = sum(r[label][2] for r in rows)
            cells.append(f" | {hours:5d} {runs / max(hours, 1) * per_month:8.2f} {runs / max(hours, 1):10.1e}")
        own = [r["own"] for r in rows if np.isfinite(r["own"][0])]
        w = sum(o[2] for o in own)
        rate = sum(o[0] * o[2] for o in own) / w if w else math.nan
        xi = np.median([o[1] for o in own]) if own else math.nan
        hit = sum(r["proxy"][0] for r in rows)
        windows = sum(r["proxy"][1] for r in rows)
        false = sum(r["proxy"][2] for r in rows)
        print(f"{name:18s}{''.join(cells)} | {rate:10.1e} {rate * per_month:7.2f} {xi:5.2f} | {hit:3d}/{windows:<3d} {false:5d}")
    print(f"runs/mo: runs of hours with |score| >= threshold outside windows, per series-month; own tail: the "
          f"rate the series' GPD tail (days >= 8) gives beyond the threshold ({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
