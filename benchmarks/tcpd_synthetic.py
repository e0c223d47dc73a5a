"""Held-out development set for ``find_change_points``: synthetic series with known change
points plus the 5 simulated ``quality_control_*`` series of tcpd-dev.

Defaults of ``find_change_points`` are studied here, *not* on the 12 real TCPD series (those
are the test set, scored by ``benchmarks/tcpd.py``). Scoring is the TCPD one, imported from
``benchmarks/tcpd.py`` (F1 with margin 5, cover); for a synthetic series the single
"annotator" is the truth.

The generator is meant to resemble the kinds of series in TCPD (economic, business,
physical), not to copy any of them:

- length log-uniform in 15..700;
- 0 change points in 20 % of the series, otherwise 1..6 (fewer when the series is short),
  at least ``max(5, n // 20)`` points apart and from the ends;
- piecewise-linear signal: a base slope (60 % of series), and at each change a level jump
  (50 %), a slope change that keeps the line continuous (25 %) or both (25 %); jumps are
  2..6 marginal noise sds, slope changes move the line by 2..6 sds over the next segment;
- AR(1) noise with phi uniform in 0..0.9, marginal sd 1;
- seasonality (30 %, period 4, 7 or 12 when there are >= 4 cycles), amplitude 0.5..3 sds;
- outliers (30 %): 1..3 spikes of 5..10 sds;
- then an arbitrary offset and scale.

Null set (false alarms): ``--null`` series (default 300) from the same generator with the
number of change points forced to 0 (``make_series(rng, changes=False)``; everything else,
slope, phi, seasonality, spikes, offset and scale, drawn as above), from a random stream of
their own (``null_rng(seed)``, a child of the seed, so the change-point set is unaffected).
Each is scored by whether *any* change is detected (after ``clean``).

    .venv/bin/python benchmarks/tcpd_synthetic.py [--series 300] [--null 300] [--seed 0]
        [--variant "max_ar=0.8"] [--variant "refits=2,criterion='mbic'"] [--no-baseline]
        [--by] [--processes 2] [--short 300] [--smooth 300]

Two more families, each from its own random stream (``family_rng``), so they are measured
rather than fitted to the TCPD series: ``--short`` series of 15..120 points with 0..2
changes (``make_short_series``: short yearly data) and ``--smooth`` no-change series of
smooth growth (``make_smooth_series``: logistic, exponential or quadratic curves rising by
20..200 noise sds). Reported: short F1 / cover, the share of the short no-change series
with a detected change (short FA), and the share of smooth series cut (smooth FA).

Each ``--variant`` is a comma-separated list of keyword arguments for find_change_points
(``--variant "select=None"`` is the choice before the AR(1) selection). ``--null 0`` skips
the null set.

Reported, per method (the default configuration, each variant, ruptures Pelt(l2, BIC)):

- ``syn F1`` / ``syn cover``: mean TCPD F1 and cover on the ``--series`` synthetic series,
  and their paired differences from the default (with standard errors);
- ``qc F1`` / ``qc cover``: the same on the 5 simulated quality_control series;
- ``null FA``: share of the no-change series with any detected change; a second table
  splits it by phi < 0.5 / >= 0.5 and length < 60 / >= 60 (count and share per group),
  gives the mean number of detected changes per no-change series and, for the other
  methods, how many no-change series only they (+) or only the default (-) flag;
- ``cpu s``: process CPU seconds spent in the method over all of these series;
- with ``--by``: synthetic F1 / cover by group (k=0, length, phi, seasonal, spikes).
"""
from __future__ import annotations

import argparse
import ast
import math
import multiprocessing as mp
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tcpd import DEFAULT_DATA, _ruptures_bic, clean, cover, f1, load  # noqa: E402

from monitor.detect.changepoint import find_change_points  # noqa: E402


# ----------------------------------------------------------------------------- generator
def _positions(rng: np.random.Generator, n: int, k: int, gap: int) -> list[int]:
    for _ in range(200):
        cps = np.sort(rng.integers(gap, n - gap + 1, size=k))
        if k == 0 or np.all(np.diff(np.concatenate(([0], cps, [n]))) >= gap):
            return [int(c) for c in cps]
    return []


def _piecewise_signal(rng: np.random.Generator, n: int, cps: list[int], *, max_jump: float) -> np.ndarray:
    """A line (random slope in 60 % of series) that changes at ``cps``: a level jump (50 %),
    a slope change (25 %) or both, of 2..``max_jump`` marginal sds (slope: over the next
    segment); continuous unless a change jumps."""
    bounds = [0, *cps, n]
    signal = np.empty(n)
    level = 0.0
    slope = rng.normal(0.0, 5.0) / n if rng.random() < 0.6 else 0.0
    for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        if i > 0:
            kind = rng.choice(["level", "slope", "both"], p=[0.5, 0.25, 0.25])
            if kind in ("level", "both"):
                level += rng.choice([-1.0, 1.0]) * rng.uniform(2.0, max_jump)
            if kind in ("slope", "both"):
                slope += rng.choice([-1.0, 1.0]) * rng.uniform(2.0, max_jump) / (b - a)
        signal[a:b] = level + slope * np.arange(b - a)
        level = level + slope * (b - a)
    return signal


def make_series(rng: np.random.Generator, changes: bool = True) -> tuple[np.ndarray, list[int], dict]:
    """One series, its true change points and its parameters. ``changes=False`` forces 0
    change points (the null set); the 20 % draw is made either way."""
    n = int(round(math.exp(rng.uniform(math.log(15), math.log(700)))))
    gap = max(5, n // 20)
    max_k = min(6, n // gap - 1)
    no_change = rng.random() < 0.2 or not changes
    k = 0 if (no_change or max_k < 1) else int(rng.integers(1, max_k + 1))
    cps = _positions(rng, n, k, gap)
    k = len(cps)

    signal = _piecewise_signal(rng, n, cps, max_jump=6.0)

    phi = rng.uniform(0.0, 0.9)
    x = signal + ar1_noise(rng, n, phi)

    period = None
    if rng.random() < 0.3:
        options = [p for p in (4, 7, 12) if n >= 4 * p]
        if options:
            period = int(rng.choice(options))
            shape = rng.normal(size=period)
            shape = (shape - shape.mean()) / (shape.std() or 1.0)
            x += rng.uniform(0.5, 3.0) * shape[np.arange(n) % period]
    spikes = 0
    if rng.random() < 0.3:
        spikes = int(rng.integers(1, 4))
        where = rng.integers(0, n, size=spikes)
        x[where] += rng.choice([-1.0, 1.0], size=spikes) * rng.uniform(5.0, 10.0, size=spikes)
    x = rng.uniform(-100, 100) + math.exp(rng.uniform(-3, 5)) * x
    return x, cps, {"n": n, "k": k, "phi": phi, "period": period, "spikes": spikes}


def ar1_noise(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    """Unit-variance AR(1) noise (the synthetic families' errors; tests/ar_noise.py uses it too)."""
    e = rng.normal(0.0, math.sqrt(1.0 - phi * phi), n)
    noise = np.empty(n)
    noise[0] = rng.normal()
    for i in range(1, n):
        noise[i] = phi * noise[i - 1] + e[i]
    return noise


def make_short_series(rng: np.random.Generator) -> tuple[np.ndarray, list[int], dict]:
    """Short yearly-like series: 15..120 points, 0 (25 %), 1 (40 %) or 2 (35 %) changes at
    least 5 points apart and from the ends; a base trend (60 %); each change a level jump
    (50 %), a slope change (25 %) or both, of 2..5 marginal sds (slope: over the next
    segment); AR(1) noise with phi in 0..0.6 (yearly data are less persistent than
    monthly); offset and scale as in ``make_series``."""
    n = int(round(math.exp(rng.uniform(math.log(15), math.log(120)))))
    k = int(rng.choice([0, 1, 2], p=[0.25, 0.4, 0.35]))
    k = min(k, n // 5 - 1)
    cps = _positions(rng, n, k, 5)
    signal = _piecewise_signal(rng, n, cps, max_jump=5.0)
    phi = rng.uniform(0.0, 0.6)
    x = signal + ar1_noise(rng, n, phi)
    x = rng.uniform(-100, 100) + math.exp(rng.uniform(-3, 5)) * x
    return x, [int(c) for c in cps], {"n": n, "k": len(cps), "phi": phi, "period": None, "spikes": 0}


def make_smooth_series(rng: np.random.Generator) -> tuple[np.ndarray, list[int], dict]:
    """Smooth growth without any change (a population, a cumulative count): 60..900
    points of a logistic, exponential or quadratic curve rising by 20..200 noise sds, plus
    AR(1) noise with phi in 0..0.95. The truth is "no change"."""
    n = int(round(math.exp(rng.uniform(math.log(60), math.log(900)))))
    u = np.linspace(0.0, 1.0, n)
    shape = rng.choice(["logistic", "exponential", "quadratic"])
    if shape == "logistic":
        mid, width = rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.4)
        curve = 1.0 / (1.0 + np.exp(-(u - mid) / width))
    elif shape == "exponential":
        curve = np.expm1(rng.uniform(1.0, 3.0) * u)
    else:
        curve = u + rng.uniform(-0.8, 0.8) * u * u
    curve = (curve - curve.min()) / (np.ptp(curve) or 1.0)
    phi = rng.uniform(0.0, 0.95)
    x = rng.uniform(20.0, 200.0) * curve + ar1_noise(rng, n, phi)
    x = rng.uniform(-100, 100) + math.exp(rng.uniform(-3, 5)) * x
    return x, [], {"n": n, "k": 0, "phi": phi, "period": None, "spikes": 0, "shape": str(shape)}


def make_growth_series(rng: np.random.Generator) -> tuple[np.ndarray, list[int], dict]:
    """Multiplicative growth (GDP, debt, traffic counts): the short family's generator on
    the log scale, around a growth rate of 0..8 % a step, exponentiated, so the noise and
    every change scale with the level. Marginal noise sd 1..10 % of the level; changes of
    2..5 noise sds in the log level or the growth rate. 15..300 points, 0..2 changes."""
    n = int(round(math.exp(rng.uniform(math.log(15), math.log(300)))))
    k = int(rng.choice([0, 1, 2], p=[0.25, 0.4, 0.35]))
    k = min(k, n // 5 - 1)
    cps = _positions(rng, n, max(k, 0), max(5, n // 20))
    noise_sd = rng.uniform(0.01, 0.1)
    signal = _piecewise_signal(rng, n, cps, max_jump=5.0)
    phi = rng.uniform(0.0, 0.6)
    log_x = rng.uniform(0.0, 0.08) * np.arange(n) + noise_sd * (signal + ar1_noise(rng, n, phi))
    x = math.exp(rng.uniform(-3, 10)) * np.exp(log_x)
    return x, [int(c) for c in cps], {"n": n, "k": len(cps), "phi": phi, "period": None, "spikes": 0}


def make_growth_set(n_series: int, seed: int):
    rng = family_rng(seed, 4)
    return [make_growth_series(rng) for _ in range(n_series)]


YEARLY_ANNOTATORS = 5


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def make_yearly_series(rng: np.random.Generator) -> tuple[np.ndarray, dict, dict]:
    """Short yearly trending series as the held-out TCPD ones look (public debt, GDP, home
    runs, rail lines): 20..120 points that always trend (a base slope moving the line by
    3..30 noise sds), 0 (20 %), 1 (40 %) or 2 (40 %) changes at least ``max(5, n // 8)``
    points apart and from the ends, each a slope break that keeps the line continuous
    (40 %), a peak (the slope turns to 0.5..1.5 times its opposite, 20 %), a level jump
    (25 %) or a jump and a slope break (15 %); breaks move the line by 3..25 noise sds over
    the next segment, jumps are 3..20 sds (both log-uniform: such series are smooth next to
    their bends); AR(1) noise with phi in 0..0.9 (economic years wander); growth on the log
    scale in 40 % (the series is exp of that, rising or falling 1.5..20-fold).

    Returned with 5 simulated annotators instead of one truth: each marks nothing at all
    with probability 0.15 (some readers see one smooth trend), otherwise each change with
    probability 0.85, one or two points off in half the cases (a bend has no exact
    point). Scored like TCPD against them."""
    n = int(round(math.exp(rng.uniform(math.log(20), math.log(120)))))
    gap = max(5, n // 8)
    k = int(rng.choice([0, 1, 2], p=[0.2, 0.4, 0.4]))
    k = min(k, n // gap - 1)
    cps = _positions(rng, n, k, gap)
    bounds = [0, *cps, n]
    slope = rng.choice([-1.0, 1.0]) * _log_uniform(rng, 3.0, 30.0) / n
    signal = np.empty(n)
    level = 0.0
    kinds = []
    for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        if i > 0:
            kind = str(rng.choice(["slope", "peak", "level", "both"], p=[0.4, 0.2, 0.25, 0.15]))
            kinds.append(kind)
            if kind in ("level", "both"):
                level += rng.choice([-1.0, 1.0]) * _log_uniform(rng, 3.0, 20.0)
            if kind in ("slope", "both"):
                slope += rng.choice([-1.0, 1.0]) * _log_uniform(rng, 3.0, 25.0) / (b - a)
            if kind == "peak":
                turned = -slope * rng.uniform(0.5, 1.5)
                # a peak must also be visible: at least 3 sds of bend over the next segment
                if abs(turned - slope) * (b - a) < 3.0:
                    turned = slope - np.sign(slope or 1.0) * 3.0 / (b - a)
                slope = turned
        signal[a:b] = level + slope * np.arange(b - a)
        level = level + slope * (b - a)
    phi = rng.uniform(0.0, 0.9)
    x = signal + ar1_noise(rng, n, phi)
    log_scale = rng.random() < 0.4
    if log_scale:
        x = math.exp(rng.uniform(-2.0, 8.0)) * np.exp(rng.uniform(math.log(1.5), math.log(20.0)) * x / np.ptp(x))
    else:
        x = rng.uniform(-100, 100) + math.exp(rng.uniform(-3, 5)) * x
    annotators = {}
    for j in range(YEARLY_ANNOTATORS):
        if rng.random() < 0.15:
            annotators[str(j)] = []
            continue
        marks = [c + int(rng.choice([-2, -1, 1, 2])) if rng.random() < 0.5 else c
                 for c in cps if rng.random() < 0.85]
        annotators[str(j)] = sorted({m for m in marks if 0 < m < n})
    meta = {"n": n, "k": len(cps), "phi": phi, "period": None, "spikes": 0, "kinds": kinds, "log": log_scale}
    return x, annotators, meta


def make_yearly_set(n_series: int, seed: int):
    rng = family_rng(seed, 5)
    return [make_yearly_series(rng) for _ in range(n_series)]


def family_rng(seed: int, family: int) -> np.random.Generator:
    """A family's own stream (child of ``seed``), so adding one leaves the others unchanged."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(family,)))


def make_short_set(n_series: int, seed: int):
    rng = family_rng(seed, 2)
    return [make_short_series(rng) for _ in range(n_series)]


def make_smooth_set(n_series: int, seed: int):
    rng = family_rng(seed, 3)
    return [make_smooth_series(rng) for _ in range(n_series)]


def make_set(n_series: int, seed: int):
    rng = np.random.default_rng(seed)
    return [make_series(rng) for _ in range(n_series)]


def null_rng(seed: int) -> np.random.Generator:
    """The null set's stream: a child of ``seed``, independent of ``make_set``'s."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))


def make_null_set(n_series: int, seed: int):
    rng = null_rng(seed)
    return [make_series(rng, changes=False) for _ in range(n_series)]


# ----------------------------------------------------------------------------- scoring
def parse_variant(text: str) -> dict:
    if not text.strip():
        return {}
    call = ast.parse(f"f({text})", mode="eval").body
    return {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}


_CASES: list = []


def _score_one(args):
    method, i = args
    values, ann = _CASES[i]
    n = len(values)
    t0 = time.process_time()
    if method == "pelt_l2_bic":
        pred = _ruptures_bic("Pelt")(values)
    else:
        pred = find_change_points(values, **parse_variant(method))
    sec = time.process_time() - t0
    pred = clean(pred, n)
    return f1(ann, pred), cover(ann, pred, n), sec, len(pred)


def evaluate(methods: list[str], cases: list, processes: int = 2) -> dict[str, np.ndarray]:
    global _CASES
    _CASES = cases
    jobs = [(m, i) for m in methods for i in range(len(cases))]
    if processes > 1:
        with mp.get_context("fork").Pool(processes) as pool:
            out = pool.map(_score_one, jobs, chunksize=8)
    else:
        out = [_score_one(j) for j in jobs]
    res = {}
    for j, m in enumerate(methods):
        res[m] = np.array(out[j * len(cases) : (j + 1) * len(cases)])
    return res


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=300)
    parser.add_argument("--null", type=int, default=300, help="no-change series (0 = none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--variant", action="append", default=[], help="kwargs, e.g. \"max_ar=0.8\"")
    parser.add_argument("--no-baseline", action="store_true", help="skip ruptures Pelt(l2, BIC)")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--by", action="store_true", help="also break the synthetic scores down")
    parser.add_argument("--short", type=int, default=300, help="short yearly-like series (0 = none)")
    parser.add_argument("--smooth", type=int, default=300, help="smooth-growth no-change series (0 = none)")
    args = parser.parse_args(argv)

    t_start = time.perf_counter()
    synth = make_set(args.series, args.seed)
    syn_cases = [(x, {"truth": cps}) for x, cps, _ in synth]
    qc_cases = [(v, ann) for name, v, ann in load(args.data) if name.startswith("quality_control")]
    null = make_null_set(args.null, args.seed)
    null_cases = [(x, {"truth": []}) for x, _, _ in null]
    methods = [""] + args.variant + ([] if args.no_baseline else ["pelt_l2_bic"])
    syn = evaluate(methods, syn_cases, args.processes)
    qc = evaluate(methods, qc_cases, args.processes)
    nul = (evaluate(methods, null_cases, args.processes) if null_cases
           else {m: np.zeros((0, 4)) for m in methods})
    short = make_short_set(args.short, args.seed)
    short_cases = [(x, {"truth": cps}) for x, cps, _ in short]
    sho = (evaluate(methods, short_cases, args.processes) if short_cases
           else {m: np.zeros((0, 4)) for m in methods})
    short_null = np.array([m["k"] == 0 for _, _, m in short], dtype=bool)
    smooth_cases = [(x, {"truth": []}) for x, _, _ in make_smooth_set(args.smooth, args.seed)]
    smo = (evaluate(methods, smooth_cases, args.processes) if smooth_cases
           else {m: np.zeros((0, 4)) for m in methods})

    label = {m: ("default" if m == "" else m) for m in methods}
    width = max(24, *(len(v) + 2 for v in label.values()))
    print(
        f"synthetic: {args.series} series, seed {args.seed}; quality_control: {len(qc_cases)} series; "
        f"null (no change): {args.null} series"
    )
    print(
        f"{'method':<{width}}{'syn F1':>8}{'syn cover':>10}{'(F1+cov)/2':>11}{'qc F1':>8}{'qc cover':>9}"
        f"{'null FA':>9}{'cpu s':>8}   paired vs default: dF1 (se), dcover (se)"
    )
    base = syn[""]
    for m in methods:
        s, q, z = syn[m], qc[m], nul[m]
        d = s[:, :2] - base[:, :2]
        se = d.std(axis=0, ddof=1) / math.sqrt(len(d)) if len(d) > 1 else np.zeros(2)
        paired = "" if m == "" else f"   {d[:, 0].mean():+.4f} ({se[0]:.4f}), {d[:, 1].mean():+.4f} ({se[1]:.4f})"
        fa = f"{(z[:, 3] > 0).mean():>9.3f}" if len(z) else f"{'-':>9}"
        print(
            f"{label[m]:<{width}}{s[:, 0].mean():>8.3f}{s[:, 1].mean():>10.3f}{s[:, :2].mean():>11.3f}"
            f"{q[:, 0].mean():>8.3f}{q[:, 1].mean():>9.3f}{fa}"
            f"{s[:, 2].sum() + q[:, 2].sum() + z[:, 2].sum():>8.1f}{paired}"
        )
    if short_cases or smooth_cases:
        print(
            f"\n{'method':<{width}}{'short F1':>9}{'cover':>7}{'short FA':>10}{'smooth FA':>10}{'changes/series':>16}"
            f"   (short: {len(short_cases)} series, {int(short_null.sum())} without change; smooth growth: {len(smooth_cases)})"
        )
        for m in methods:
            s_, z_ = sho[m], smo[m]
            cells = [
                f"{s_[:, 0].mean():>9.3f}{s_[:, 1].mean():>7.3f}" if len(s_) else f"{'-':>9}{'-':>7}",
                f"{(s_[short_null, 3] > 0).mean():>10.3f}" if short_null.any() else f"{'-':>10}",
                f"{(z_[:, 3] > 0).mean():>10.3f}{z_[:, 3].mean():>16.3f}" if len(z_) else f"{'-':>10}{'-':>16}",
            ]
            print(f"{label[m]:<{width}}" + "".join(cells))
    if null:
        meta = [m for _, _, m in null]
        groups = {
            "all": list(range(len(meta))),
            "phi<0.5": [i for i, m in enumerate(meta) if m["phi"] < 0.5],
            "phi>=0.5": [i for i, m in enumerate(meta) if m["phi"] >= 0.5],
            "n<60": [i for i, m in enumerate(meta) if m["n"] < 60],
            "n>=60": [i for i, m in enumerate(meta) if m["n"] >= 60],
        }
        print("\nno-change series: share with any detected change (series with a change / series)")
        print(
            f"{'method':<{width}}" + "".join(f"{g:>18}" for g in groups)
            + f"{'changes/series':>16}   vs default: +only here, -only default"
        )
        base_hit = nul[""][:, 3] > 0
        for m in methods:
            hit = nul[m][:, 3] > 0
            cells = "".join(
                f"{(f'{hit[ix].mean():.3f} ({int(hit[ix].sum())}/{len(ix)})' if ix else '-'):>18}"
                for ix in groups.values()
            )
            paired = "" if m == "" else f"   +{int((hit & ~base_hit).sum())} -{int((base_hit & ~hit).sum())}"
            print(f"{label[m]:<{width}}{cells}{nul[m][:, 3].mean():>16.3f}{paired}")
    if args.by:
        meta = [m for _, _, m in synth]
        groups = {
            "k=0": [i for i, m in enumerate(meta) if m["k"] == 0],
            "k>=1": [i for i, m in enumerate(meta) if m["k"] >= 1],
            "n<60": [i for i, m in enumerate(meta) if m["n"] < 60],
            "n>=200": [i for i, m in enumerate(meta) if m["n"] >= 200],
            "phi<0.45": [i for i, m in enumerate(meta) if m["phi"] < 0.45],
            "phi>=0.7": [i for i, m in enumerate(meta) if m["phi"] >= 0.7],
            "seasonal": [i for i, m in enumerate(meta) if m["period"]],
            "spikes": [i for i, m in enumerate(meta) if m["spikes"]],
        }
        print("\nsynthetic F1 / cover by group")
        print(f"{'method':<{width}}" + "".join(f"{g + f' ({len(ix)})':>18}" for g, ix in groups.items()))
        for m in methods:
            s = syn[m]
            print(f"{label[m]:<{width}}" + "".join(
                f"{s[ix, 0].mean():>9.3f}{s[ix, 1].mean():>9.3f}" for ix in groups.values()))
    print(f"wall seconds: {time.perf_counter() - t_start:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
