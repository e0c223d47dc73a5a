"""NAB live replay: the product's detector paging hour by hour on real streaming series.

Protocol of ../shared/data/nab-dev/README.md (scoring in ``nab_score.py``):

- each series is aggregated per hour: summed for counts (taxi passengers, tweet volumes),
  averaged for everything else. Prices (realAdExchange) are averaged by the protocol; the
  traffic and AWS series are rates or levels (CPU %, speed, occupancy, travel time, bytes or
  requests per 5 minutes) and are averaged too, which for a count with every record present
  is its sum / 12 and stays level when records are missing. Hours without a record are NaN;
- for every hour t (0-based), ``detect(v[:t + 1])`` sees the hours completed so far; a page
  is a segment open at hour t where none was open at hour t - 1, stamped on the first raw
  record at or after the end of hour t (a page after the last record is dropped);
- NAB's three profiles, normalised over the set, beside the published detectors' figures.

    .venv/bin/python benchmarks/nab.py [--data ../shared/data/nab-dev] [--series 'realAdExchange/*']
        [--jobs 2] [--sensitivity medium] [--json out.json] [--trace DIR]

The replay is quadratic (one full detection per hour, 59 M bucket judgements for the 37 dev
series, ~40 us each): about 40 min of CPU, three quarters of it in ambient_temperature (7,888
hours) and nyc_taxi (5,160 hours); on a loaded machine at nice 10 it takes hours. Once a
series is six weeks long (period and warm-up fixed) and its detector runs no search over the
whole history (plain hourly series), the remaining hours are replayed in one pass reading the
judge's verdicts after each hour: the same trace (``tests/test_nab_replay.py``), taxi in
minutes. The first six weeks stay hour by hour.
"""
from __future__ import annotations

import argparse
import fnmatch
import functools
import json
import math
import multiprocessing
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, Path(__file__).resolve().parent):  # run from a checkout without installing
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from nab_score import PROFILES, FileScore, normalised, score_file  # noqa: E402

from monitor.detect import detect_series  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "nab-dev"
PERIOD = (24, 168)
ACCEPT_AFTER = 72
FIRST_WEEKS_HOURS = 21 * 24  # "first three weeks": a new metric's cold start
DAYS_PER_MONTH = 30.4375
SUMMED = ("realTweets/*", "realKnownCause/nyc_taxi.csv")  # counts; everything else is averaged

# Published detectors on these 37 series (README): standard, reward low FP, reward low FN.
ANCHORS = {
    "ARTime": (72.3, 63.5, 77.6),
    "Numenta HTM": (71.3, 63.9, 75.2),
    "CAD OSE": (67.8, 64.6, 71.8),
    "KNN CAD": (56.8, None, None),
    "Random Cut Forest": (56.1, None, None),
    "earthgecko Skyline": (55.0, None, None),
    "relative entropy": (52.8, None, None),
    "Twitter ADVec": (41.1, None, None),
    "Etsy Skyline": (38.8, None, None),
    "windowed Gaussian": (37.5, None, None),
    "Bayesian change point": (31.0, None, None),
    "random": (14.6, None, None),
}
KINDS = ("spike", "level_shift", "mix_shift")
# where pages outside windows come from (Result.causes): the cold start, a problem re-paging
# within its day (the series' daily cycle), or a page on its own
COLD_HOURS = 60
REPAGE_HOURS = 24
CAUSES = ("first 60 h", "a day after a page, same dir", "a day after a page, other dir", "alone")


# ----------------------------------------------------------------------------- the detector
def detect(values: np.ndarray, sensitivity="medium"):
    """The one place the replay calls the product; a variant swaps this function."""
    return detect_series(values, period=PERIOD, direction="both", accept_after=ACCEPT_AFTER,
                         sensitivity=sensitivity)


# ----------------------------------------------------------------------------- data
@dataclass
class Series:
    name: str  # "category/file.csv", the key of windows.json
    timestamps: np.ndarray  # datetime64[s] per raw record
    windows: list[tuple[int, int]]  # record indices, both inclusive
    how: str  # "sum" | "mean"
    hourly: np.ndarray  # one value per hour from the first record's hour, NaN if empty
    stamp: np.ndarray  # record index a page at the end of each hour lands on; -1 = after the file


def aggregation(name: str) -> str:
    return "sum" if any(fnmatch.fnmatch(name, g) for g in SUMMED) else "mean"


def load_series(data: Path, name: str, windows: list[list[str]]) -> Series:
    raw = np.genfromtxt(data / name, delimiter=",", skip_header=1, dtype=None, encoding="utf-8",
                        converters={0: lambda s: np.datetime64(s.replace(" ", "T"), "s")})
    ts = np.array([r[0] for r in raw], dtype="datetime64[s]")
    values = np.array([r[1] for r in raw], dtype=float)
    # NAB scores records in file order; machine_temperature repeats an hour, so record
    # positions are looked up on the running maximum of the timestamps
    clock = np.maximum.accumulate(ts)
    hour = ts.astype("datetime64[h]")
    idx = (hour - hour[0]).astype(int)
    n_hours = int(idx.max()) + 1
    counts = np.bincount(idx, minlength=n_hours)
    sums = np.bincount(idx, weights=values, minlength=n_hours)
    how = aggregation(name)
    with np.errstate(invalid="ignore", divide="ignore"):
        hourly = np.where(counts > 0, sums if how == "sum" else sums / counts, np.nan)
    hour_end = (hour[0] + np.arange(1, n_hours + 1)).astype("datetime64[s]")
    stamp = np.searchsorted(clock, hour_end, side="left")
    stamp = np.where(stamp < ts.size, stamp, -1)
    win = []
    for start, end in windows:
        a = int(np.searchsorted(clock, np.datetime64(start.replace(" ", "T"), "s"), side="left"))
        b = int(np.searchsorted(clock, np.datetime64(end.replace(" ", "T"), "s"), side="right")) - 1
        win.append((a, b))
    return Series(name, ts, win, how, hourly, stamp)


def load(data: Path, pattern: str = "*") -> list[Series]:
    windows = json.loads((data / "windows.json").read_text())
    names = sorted(n for n in windows if fnmatch.fnmatch(n, pattern))
    if not names:
        raise SystemExit(f"no series in {data} match {pattern!r}")
    return [load_series(data, n, windows[n]) for n in names]


# ----------------------------------------------------------------------------- replay
@dataclass
class Trace:
    """What the live detector said at the end of every hour (for diagnosis)."""
    open: np.ndarray  # bool: a segment open at the last bucket
    seg_start: np.ndarray  # its first bucket, -1 if none
    seg_kind: np.ndarray  # index into KINDS, -1 if none
    seg_dir: np.ndarray  # +1 up, -1 down, 0 none
    seg_score: np.ndarray
    score: np.ndarray  # the last bucket's signed standardised deviation
    expected: np.ndarray  # the last bucket's expected value
    sd: np.ndarray  # the last bucket's noise sd (band half-width / threshold)


def _put(tr: Trace, t: int, score: float, expected: float, sd: float, seg) -> None:
    tr.score[t], tr.expected[t], tr.sd[t] = score, expected, sd
    if seg is not None:
        tr.open[t] = True
        tr.seg_start[t] = seg.start
        tr.seg_kind[t] = KINDS.index(seg.kind) if seg.kind in KINDS else len(KINDS)
        tr.seg_dir[t] = 1 if seg.direction == "up" else -1
        tr.seg_score[t] = seg.score


def replay(values: np.ndarray, detector=detect, fast: bool = True) -> Trace:
    """The detector on the hours so far, every hour. With ``fast`` (the default detector
    only), each stretch of hours over which nothing in the run depends on the series' length
    (same period and warm-up, no change point search over the whole history) is replayed in
    one pass that reads the judge's verdicts after each hour: the same trace, without the
    quadratic cost (``tests/test_nab_replay.py`` checks it against the hourly runs)."""
    n = values.size
    tr = Trace(np.zeros(n, bool), np.full(n, -1), np.full(n, -1), np.zeros(n, int), np.full(n, np.nan),
               np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan))
    stretches = _steady_stretches(values, detector) if fast else []
    t = 0
    for first, last in stretches + [(n + 1, n + 1)]:  # prefix lengths first..last share one run
        for m in range(t + 1, min(first, n + 1)):
            det = detector(values[:m])
            threshold = det.params.get("threshold") or math.nan
            _put(tr, m - 1, det.score[-1], det.expected[-1], (det.upper[-1] - det.lower[-1]) / (2 * threshold),
                 det.open_segment)
        if first <= n:
            _one_pass(values[:last], detector, first - 1, tr)
            t = last
    return tr


MIN_STRETCH = 12  # prefix lengths: shorter stretches are cheaper hour by hour


def _sensitivity(detector):
    """The sensitivity of ``detect`` or a partial of it; None for any other detector."""
    if detector is detect:
        return "medium"
    if isinstance(detector, functools.partial) and detector.func is detect and not detector.args:
        return detector.keywords.get("sensitivity", "medium")
    return None


def _steady_stretches(values: np.ndarray, detector) -> list[tuple[int, int]]:
    """Maximal stretches [first, last] of prefix lengths that run with the same options and
    without a change point plan (none if not the default detector)."""
    from monitor.detect.options import DetectOptions
    from monitor.detect.warmup import warmup_length

    n = values.size
    sens = _sensitivity(detector)
    if sens is None or n < 2:
        return []
    opts = DetectOptions(period=PERIOD, direction="both", accept_after=ACCEPT_AFTER, sensitivity=sens)

    def key(m):
        b = opts.resolve(n=m, n_series=1)
        return b.period, b.inner_period, warmup_length(m, b.period)

    keys = [key(m) for m in range(1, n + 1)]
    out, first = [], 1
    for m in range(2, n + 2):
        if m == n + 1 or keys[m - 1] != keys[first - 1]:
            last = m - 1
            # a whole-history search (change points) makes every prefix its own run
            if last - first + 1 >= MIN_STRETCH and "change_points" not in detector(values[:last]).params:
                out.append((first, last))
            first = m
    return out


def _one_pass(values: np.ndarray, detector, first: int, tr: Trace) -> None:
    """Hours ``first`` .. n-1 of the replay from one run of the default detector."""
    from monitor.detect import detectors
    from monitor.detect.options import DetectOptions
    from monitor.detect.state import buckets_per_day

    opts = DetectOptions(period=PERIOD, direction="both", accept_after=ACCEPT_AFTER,
                         sensitivity=_sensitivity(detector)).resolve(n=values.size, n_series=1)
    obs = detectors.observed_values(values[None, :].astype(float), None, opts.min_volume)[0]
    hold = detectors.HOLD_BUCKETS_SUBDAILY if buckets_per_day(opts.period) > 1 else 0

    def step(t, out):
        if t < first:
            return
        m = t + 1
        accepted = [(s, at) for row, s, at in out.accepted if row == 0]
        segs = detectors._segments(obs[:m], None, out.score[0, :m], out.anomalous[0, :m], out.direction[0, :m],
                                   out.shift[0, :m], out.shift_score[0, :m], out.expected[0, :m], accepted, hold)
        seg = next((g for g in reversed(segs) if g.end is None), None)  # as SeriesDetection.open_segment
        _put(tr, t, out.score[0, t], out.expected[0, t], out.sd[0, t], seg)

    detectors._run(values[None, :].astype(float), None, opts, name="default", spikes=True, shifts=True,
                   on_step=step)


def page_hours(is_open: np.ndarray) -> np.ndarray:
    """Hours where a segment is open and none was the hour before."""
    was = np.concatenate([[False], is_open[:-1]])
    return np.flatnonzero(is_open & ~was)


@dataclass
class Result:
    name: str
    how: str
    n_records: int
    n_hours: int
    days: float
    windows: list[tuple[int, int]]
    pages: list[dict]  # hour, record, in_window, kind, direction, score, seg_start
    scores: dict[str, FileScore]
    seconds: float
    dropped: int = 0  # pages after the last record
    trace: Trace | None = field(default=None, repr=False)

    def outside(self, first_weeks: bool | None = None) -> int:
        return sum(1 for p in self.pages if not p["in_window"]
                   and (first_weeks is None or (p["hour"] < FIRST_WEEKS_HOURS) == first_weeks))

    def causes(self) -> dict[str, int]:
        """Pages outside windows by where they come from: CAUSES, in that order of precedence."""
        out = dict.fromkeys(CAUSES, 0)
        for i, p in enumerate(self.pages):
            if p["in_window"]:
                continue
            near = [q for q in self.pages[:i] if p["hour"] - q["hour"] <= REPAGE_HOURS]
            if p["hour"] < COLD_HOURS:
                out["first 60 h"] += 1
            elif any(q["direction"] == p["direction"] for q in near):
                out["a day after a page, same dir"] += 1
            elif near:
                out["a day after a page, other dir"] += 1
            else:
                out["alone"] += 1
        return out


def evaluate(s: Series, trace: Trace, seconds: float = 0.0) -> Result:
    pages, dropped = [], 0
    for h in page_hours(trace.open):
        rec = int(s.stamp[h])
        if rec < 0:
            dropped += 1
            continue
        pages.append({
            "hour": int(h), "record": rec, "timestamp": str(s.timestamps[rec]),
            "in_window": any(a <= rec <= b for a, b in s.windows),
            "kind": KINDS[trace.seg_kind[h]] if 0 <= trace.seg_kind[h] < len(KINDS) else "other",
            "direction": "up" if trace.seg_dir[h] > 0 else "down",
            "score": float(trace.seg_score[h]), "seg_start": int(trace.seg_start[h]),
        })
    records = [p["record"] for p in pages]
    scores = {k: score_file(s.timestamps.size, s.windows, records, prof) for k, prof in PROFILES.items()}
    days = float((s.timestamps.max() - s.timestamps[0]) / np.timedelta64(1, "s")) / 86400.0
    return Result(s.name, s.how, int(s.timestamps.size), int(s.hourly.size), days, s.windows, pages,
                  scores, seconds, dropped, trace)


def run_one(s: Series, detector=detect) -> Result:
    t0 = time.perf_counter()
    trace = replay(s.hourly, detector)
    return evaluate(s, trace, time.perf_counter() - t0)


def run_all(series: list[Series], detector=detect, jobs: int = 2, on_result=None) -> list[Result]:
    """The longest series starts first and the rest go shortest first, so that the workers
    finish together and results come early; ``on_result`` sees each series as it finishes."""
    order = sorted(series, key=lambda s: s.hourly.size)
    order = order[-1:] + order[:-1]
    work = functools.partial(run_one, detector=detector)
    results = []
    with multiprocessing.get_context("fork").Pool(max(jobs, 1)) as pool:
        for r in pool.imap_unordered(work, order, chunksize=1):
            results.append(r)
            if on_result is not None:
                on_result(r)
    return sorted(results, key=lambda r: r.name)


# ----------------------------------------------------------------------------- report
def months(results: list[Result], first_weeks: bool | None = None) -> float:
    def part(r):
        if first_weeks is None:
            return r.days
        return min(r.days, 21.0) if first_weeks else max(r.days - 21.0, 0.0)
    return sum(part(r) for r in results) / DAYS_PER_MONTH


def summary(results: list[Result]) -> dict:
    def rate(first_weeks):
        m = months(results, first_weeks)
        return sum(r.outside(first_weeks) for r in results) / m if m > 0 else math.nan
    causes = dict.fromkeys(CAUSES, 0)
    for r in results:  # each result's pages classified once
        for cause, n in r.causes().items():
            causes[cause] += n
    return {
        **{k: normalised([r.scores[k] for r in results]) for k in PROFILES},
        "windows": sum(r.scores["standard"].windows for r in results),
        "hit": sum(r.scores["standard"].hit for r in results),
        "pages": sum(len(r.pages) for r in results),
        "outside": sum(r.outside() for r in results),
        "per_month": rate(None), "per_month_first3w": rate(True), "per_month_later": rate(False),
        "causes": causes,
    }


def print_report(results: list[Result], wall: float) -> dict:
    head = (f"{'series':<52}{'agg':>5}{'hours':>6}{'win':>4}{'hit':>4}{'pages':>6}{'out':>5}{'out/mo':>7}"
            f"{'std':>7}{'lowFP':>7}{'lowFN':>7}{'sec':>6}")
    print(head)
    for r in results:
        per_month = r.outside() / (r.days / DAYS_PER_MONTH) if r.days > 0 else math.nan
        sc = {k: normalised([r.scores[k]]) for k in PROFILES}
        print(f"{r.name:<52}{r.how:>5}{r.n_hours:>6}{r.scores['standard'].windows:>4}{r.scores['standard'].hit:>4}"
              f"{len(r.pages):>6}{r.outside():>5}{per_month:>7.1f}{sc['standard']:>7.1f}"
              f"{sc['reward_low_fp']:>7.1f}{sc['reward_low_fn']:>7.1f}{r.seconds:>6.0f}")
    print("-" * len(head))
    groups = {"all": results}
    for r in results:
        groups.setdefault(r.name.split("/")[0], []).append(r)
    dev7 = [r for r in results if r.name.startswith("realAdExchange/") or r.name.endswith("nyc_taxi.csv")]
    if dev7 and len(dev7) < len(results):
        groups["adexchange+taxi"] = dev7
    print(f"{'set':<22}{'n':>3}{'std':>7}{'lowFP':>7}{'lowFN':>7}{'hit':>8}{'pages':>6}{'out':>5}"
          f"{'out/mo':>7}{'1st 3w':>7}{'later':>7}")
    out = {}
    for label, rs in groups.items():
        s = summary(rs)
        out[label] = s
        print(f"{label:<22}{len(rs):>3}{s['standard']:>7.1f}{s['reward_low_fp']:>7.1f}{s['reward_low_fn']:>7.1f}"
              f"{s['hit']:>4}/{s['windows']:<3}{s['pages']:>6}{s['outside']:>5}{s['per_month']:>7.1f}"
              f"{s['per_month_first3w']:>7.1f}{s['per_month_later']:>7.1f}")
    print("pages outside windows: " + ", ".join(f"{c} {n}" for c, n in out["all"]["causes"].items()))
    print()
    print(f"{'detector (37 dev series)':<26}{'std':>7}{'lowFP':>7}{'lowFN':>7}")
    s = out["all"]
    rows = [("monitor (this run)", (s["standard"], s["reward_low_fp"], s["reward_low_fn"]))] + list(ANCHORS.items())
    for name, (a, b, c) in sorted(rows, key=lambda x: -x[1][0]):
        fmt = lambda x: f"{x:>7.1f}" if x is not None else f"{'':>7}"  # noqa: E731
        print(f"{name:<26}{fmt(a)}{fmt(b)}{fmt(c)}")
    if len(results) < 37:
        print(f"(anchors are over the 37 dev series; this run covers {len(results)})")
    dropped = sum(r.dropped for r in results)
    print(f"wall {wall:.0f} s; detector time {sum(r.seconds for r in results):.0f} s"
          + (f"; {dropped} pages after the last record dropped" if dropped else ""))
    return out


def to_json(results: list[Result], sets: dict, wall: float, args) -> dict:
    return {
        "protocol": {"period": list(PERIOD), "accept_after": ACCEPT_AFTER, "direction": "both",
                     "sensitivity": args.sensitivity, "summed": list(SUMMED)},
        "wall_seconds": wall,
        "sets": sets,
        "series": [{
            "name": r.name, "how": r.how, "records": r.n_records, "hours": r.n_hours, "days": r.days,
            "windows": r.windows, "pages": r.pages, "dropped": r.dropped, "seconds": r.seconds,
            "scores": {k: {"raw": v.score, "normalised": normalised([v]), "hit": v.hit, "fp_pages": v.fp_pages}
                       for k, v in r.scores.items()},
        } for r in results],
    }


def sensitivity_arg(text: str):
    try:
        return float(text)
    except ValueError:
        return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--series", default="*", help="glob on category/file.csv")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--sensitivity", type=sensitivity_arg, default="medium",
                        help="low | medium | high or a threshold multiplier")
    parser.add_argument("--json", type=Path, help="write every figure and page here")
    parser.add_argument("--trace", type=Path, help="directory: one .npz per series of the hourly detector state")
    args = parser.parse_args(argv)

    series = load(args.data, args.series)
    by_name = {s.name: s for s in series}
    if args.trace:
        args.trace.mkdir(parents=True, exist_ok=True)

    def progress(r: Result) -> None:
        print(f"done {r.name}: {len(r.pages)} pages, {r.seconds:.0f} s", file=sys.stderr, flush=True)
        if args.trace:
            s = by_name[r.name]
            np.savez_compressed(args.trace / (r.name.replace("/", "__") + ".npz"), hourly=s.hourly,
                                stamp=s.stamp, **vars(r.trace))

    t0 = time.perf_counter()
    results = run_all(series, functools.partial(detect, sensitivity=args.sensitivity), args.jobs, progress)
    wall = time.perf_counter() - t0
    sets = print_report(results, wall)
    if args.json:
        args.json.write_text(json.dumps(to_json(results, sets, wall, args), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
