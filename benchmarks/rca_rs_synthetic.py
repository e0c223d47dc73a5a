"""RS-like root-cause worlds: how ``localize`` does on cases like RS that nobody tuned it on.

Usage: ``.venv/bin/python benchmarks/rca_rs_synthetic.py [--worlds 25] [--seeds 0 1]
[--before REV] [--settings base many_dims ...]`` (``--seeds``: blocks of worlds, 0 = the
original ones; two blocks show how much a figure moves with the draw of worlds)

Built from the RS data's documented structure (``/work/shared/data/README.md`` and the shapes of
the dev files, not their answers): a stall rate (stalled / all viewers) over 3-5 dimensions of
2-11 values each (bitrate, cdn, p2p, device, isp), traffic very skewed across values, only the
combinations with traffic present as leaves (13 to 1,746 a minute), 3k to 700k viewers a minute,
a baseline rate of 1-7 % that differs by value, rates that wobble from minute to minute. As in
the RS protocol, ``expected`` is the mean of the 4 previous minutes (a leaf absent in a minute
counts 0) and ``actual`` the anomalous minute. Causes: 1 to 3 segments fixing 1 to 3 dimensions
each (none containing another), drawn in proportion to traffic among segments with at least
2 % of it, each named by its coarsest equivalent (see ``_coarsest``); every leaf of a cause has
its rate multiplied by the cause's factor, itself varied per leaf (real incidents hit the leaves
of a cause unevenly).

Settings vary one thing at a time from ``base`` and go beyond the dev cases' range (more
dimensions and values, smaller and larger factors, more causes, noisier leaves, thinner and
heavier traffic, more uneven effects, a rate move shared by a whole minute); one setting has
no cause at all, one a population-wide drift and no cause (every segment named is false), one
the same drift with a cause on top. Per setting: F1 (RS/B0 rule, exact match), and per
true cause what was named: exact, over-specific (the truth plus more dimensions), too coarse
(a part of the truth), missed; plus the extra (false) causes named. "before" is ``localize`` at
git revision ``--before``, "after" the working tree, on the same worlds in the same run.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from monitor.attribute.localize import localize  # noqa: E402
from rca import Tally, load_before  # noqa: E402

NAMES = ("bitrate", "cdn", "p2p", "device", "isp", "region", "os")
HISTORY = 4


@dataclass(frozen=True)
class Setting:
    dims: tuple[int, int] = (3, 5)  # number of dimensions, inclusive range
    values: tuple[int, int] = (2, 11)  # values per dimension (p2p-like dims get 2-3)
    viewers: tuple[float, float] = (3e3, 3e5)  # viewers per minute, log-uniform
    factor: tuple[float, float] = (2.0, 8.0)  # rate factor of a cause, log-uniform
    causes: tuple[int, int] = (1, 1)
    layers: tuple[int, ...] = (1, 1, 2, 2, 3)  # dimensions a cause fixes, drawn from these
    wobble: float = 0.15  # relative sd of a leaf's rate from minute to minute
    uneven: float = 0.3  # sd of log factor across a cause's leaves
    shared: float = 0.0  # relative sd of a rate move shared by every leaf of a minute
    drift: tuple[float, float] = (1.0, 1.0)  # factor of every leaf's rate, log-uniform


BASE = Setting()
SETTINGS: dict[str, Setting] = {
    "base": BASE,
    "many_dims": replace(BASE, dims=(6, 7), values=(4, 15)),
    "small_factor": replace(BASE, factor=(1.3, 2.0)),
    "large_factor": replace(BASE, factor=(8.0, 30.0)),
    "two_causes": replace(BASE, causes=(2, 2)),
    "three_causes": replace(BASE, causes=(3, 3)),
    "noisy_leaves": replace(BASE, wobble=0.4),
    "thin": replace(BASE, viewers=(1e3, 5e3)),
    "heavy": replace(BASE, viewers=(3e5, 2e6)),
    "uneven": replace(BASE, uneven=0.7),
    "deep_causes": replace(BASE, layers=(2, 3)),
    "shared_noise": replace(BASE, shared=0.15),  # a whole minute a bit worse everywhere
    "no_cause": replace(BASE, causes=(0, 0)),  # every segment named is a false cause
    # Appended, so the worlds above keep their seeds. The whole population's rate moves (a
    # player release, a network-wide event) and no segment more than another: every segment
    # named is a false cause, the largest one most tempting.
    "drift_only": replace(BASE, causes=(0, 0), drift=(1.15, 2.0)),
    # The same drift with one real cause on top (the demo's seed-6 shape): the cause must
    # still be named.
    "cause_in_drift": replace(BASE, drift=(1.15, 2.0)),
}


def world(seed: int | list[int], setting: Setting) -> tuple[pd.DataFrame, list[str], list[dict[str, str]]]:
    """Leaves of one world (RS protocol columns), its dimensions and its causes."""
    rng = np.random.default_rng(seed)
    n_dims = int(rng.integers(setting.dims[0], setting.dims[1] + 1))
    names = list(NAMES[:n_dims])
    cards = [
        int(rng.integers(2, 4)) if name == "p2p"
        else int(rng.integers(setting.values[0], setting.values[1] + 1))
        for name in names
    ]
    # Skewed traffic shares per value (a few values carry most viewers) and risk per value.
    shares = [rng.dirichlet(np.full(c, 0.7)) for c in cards]
    risks = [rng.lognormal(0.0, 0.3, c) for c in cards]
    # Candidate combinations drawn by traffic (a full grid of 7 dimensions would be millions).
    drawn = np.stack([rng.choice(c, size=3000, p=s) for c, s in zip(cards, shares)], axis=1)
    codes = np.unique(drawn, axis=0)
    share = np.prod([shares[j][codes[:, j]] for j in range(n_dims)], axis=0)
    share *= rng.lognormal(0.0, 1.0, len(share))  # combinations are not independent
    share /= share.sum()
    viewers = float(np.exp(rng.uniform(*np.log(setting.viewers))))
    mean_den = viewers * share
    # Only combinations that see traffic exist (RS files list a leaf only when it has viewers).
    live = mean_den >= 0.5
    codes, mean_den = codes[live], mean_den[live]
    base_rate = float(rng.uniform(0.01, 0.07))
    risk = np.prod([risks[j][codes[:, j]] for j in range(n_dims)], axis=0)
    # traffic-weighted mean rate = base_rate, and no leaf above 30 % (RS leaves stall rarely)
    rate = np.clip(base_rate * risk / np.average(risk, weights=mean_den), 1e-4, 0.3)
    causes = _draw_causes(rng=rng, codes=codes, weight=mean_den, setting=setting)
    # no draw without a drift: the other settings keep their worlds
    drift = 1.0
    if setting.drift != (1.0, 1.0):
        drift = float(np.exp(rng.uniform(*np.log(setting.drift))))
    factor = np.full(len(codes), drift)
    for cause in causes:
        member = np.all([codes[:, d] == v for d, v in cause.items()], axis=0)
        k = float(np.exp(rng.uniform(*np.log(setting.factor))))
        factor[member] *= k * rng.lognormal(0.0, setting.uneven, int(member.sum()))

    def minute(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        den = rng.poisson(mean_den * rng.lognormal(0.0, 0.1))  # the whole minute breathes
        shared = rng.lognormal(0.0, setting.shared) if setting.shared else 1.0
        p = np.clip(rate * f * shared * rng.lognormal(0.0, setting.wobble, len(den)), 0.0, 0.95)
        return rng.binomial(den, p).astype(float), den.astype(float)

    past = [minute(np.ones(len(codes))) for _ in range(HISTORY)]
    stalls, viewers_now = minute(factor)
    frame = pd.DataFrame({n: [f"{n[0]}{v}" for v in codes[:, j]] for j, n in enumerate(names)})
    # RS measure: (cnt - value) / cnt, i.e. the share of viewers without a stall
    frame["actual_num"], frame["actual_den"] = viewers_now - stalls, viewers_now
    frame["expected_num"] = np.mean([d - s for s, d in past], axis=0)
    frame["expected_den"] = np.mean([d for _, d in past], axis=0)
    present = (frame["actual_den"] > 0) | (frame["expected_den"] > 0)
    truth = [{names[d]: f"{names[d][0]}{v}" for d, v in c.items()} for c in causes]
    return frame[present].reset_index(drop=True), names, truth


def _draw_causes(
    rng: np.random.Generator, codes: np.ndarray, weight: np.ndarray, setting: Setting
) -> list[dict[int, int]]:
    """1-3 segments, none containing another, each with at least 2 % of the traffic."""
    n_causes = int(rng.integers(setting.causes[0], setting.causes[1] + 1))
    causes: list[dict[int, int]] = []
    total = weight.sum()
    for _ in range(200):
        if len(causes) == n_causes:
            break
        layer = min(int(rng.choice(setting.layers)), codes.shape[1])
        dims = sorted(rng.choice(codes.shape[1], size=layer, replace=False))
        leaf = int(rng.choice(len(codes), p=weight / total))  # in proportion to traffic
        cause = {int(d): int(codes[leaf, d]) for d in dims}
        cause = _coarsest(cause=cause, codes=codes, weight=weight)
        member = np.all([codes[:, d] == v for d, v in cause.items()], axis=0)
        if weight[member].sum() < 0.02 * total:
            continue
        items = set(cause.items())
        if any(items <= set(c.items()) or set(c.items()) <= items for c in causes):
            continue
        causes.append(cause)
    return causes


def _coarsest(cause: dict[int, int], codes: np.ndarray, weight: np.ndarray) -> dict[int, int]:
    """The cause without the dimensions that do not narrow it: when the rest of a parent has
    under 1 % of the cause's traffic (cdn c0 serves only bitrate b0), the parent and the cause
    are the same segment in practice and the coarser name is the right one."""
    def traffic(segment: dict[int, int]) -> float:
        return float(weight[np.all([codes[:, d] == v for d, v in segment.items()], axis=0)].sum())

    while len(cause) > 1:
        own = traffic(cause)
        drop = next((d for d in cause
                     if traffic({k: v for k, v in cause.items() if k != d}) - own < 0.01 * own),
                    None)
        if drop is None:
            break
        cause = {k: v for k, v in cause.items() if k != drop}
    return cause


def judge(found: list[dict[str, str]], truth: list[dict[str, str]]) -> dict[str, int]:
    """Per true cause: exact / over-specific / too coarse / missed; and extra causes named."""
    named = [set(f.items()) for f in found]
    out = dict.fromkeys(KINDS, 0)
    used = set()
    for cause in truth:
        t = set(cause.items())
        kind = "missed"
        for i, n in enumerate(named):
            if i in used:
                continue
            if n == t:
                kind = "exact"
            elif t < n and kind == "missed":
                kind = "over-specific"
            elif n < t and kind == "missed":
                kind = "too-coarse"
            else:
                continue
            if kind == "exact":
                used.add(i)
                break
        if kind in ("over-specific", "too-coarse"):
            used.add(next(i for i, n in enumerate(named) if i not in used and (
                (t < n) if kind == "over-specific" else (n < t))))
        out[kind] += 1
    out["extra"] = len(named) - len(used)
    return out


def _seed(block: int, setting: int, world: int) -> int | list[int]:
    """Seed of one world; block 0 keeps the original integer seeds (earlier notes' figures)."""
    return 10_000 * (setting + 1) + world if block == 0 else [block, setting, world]


KINDS = ("exact", "over-specific", "too-coarse", "missed", "extra")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, default=25, help="worlds per setting")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--before", default="adc5054", help="git revision of 'before'")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="blocks of worlds: 0 is the original set, each other one a new set")
    args = parser.parse_args(argv)
    methods = {"before": load_before(args.before), "after": localize}
    print(f"{'setting':<13} {'method':<7} {'n':>3}  " + " ".join(f"{k:>13}" for k in KINDS)
          + f" {'F1':>6} {'s/inst':>7}")
    totals = {m: Tally() for m in methods}
    for s_index, name in enumerate(args.settings):
        setting = SETTINGS[name]
        index = list(SETTINGS).index(name)
        cases = [world(seed=_seed(block=b, setting=index, world=s), setting=setting)
                 for b in args.seeds for s in range(args.worlds)]
        for method, fn in methods.items():
            counts = dict.fromkeys(KINDS, 0)
            tally = Tally()
            for leaves, dims, truth in cases:
                start = time.perf_counter()
                found = fn(leaves, dims, "ratio")
                seconds = time.perf_counter() - start
                truth_set = {frozenset(c.items()) for c in truth}
                tally.add(found, truth_set, seconds)
                totals[method].add(found, truth_set, seconds)
                for k, v in judge(found, truth).items():
                    counts[k] += v
            print(f"{name:<13} {method:<7} {len(cases):>3}  "
                  + " ".join(f"{counts[k]:>13}" for k in KINDS)
                  + f" {tally.f1:>6.3f} {tally.mean_seconds:>7.3f}", flush=True)
    for method, tally in totals.items():
        print(f"{method}: F1 over all settings {tally.f1:.3f}, {tally.mean_seconds:.3f} s/instance")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
