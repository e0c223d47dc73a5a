"""Thin-volume root-cause worlds: is ``localize`` over-specific or over-coarse when data are thin?

Usage: ``.venv/bin/python benchmarks/rca_synthetic.py [--worlds 20] [--before REV]``

A risk-like ratio metric (say account takeovers per login) over country (12, skewed traffic) x
channel (web/app/api) x account_age (4) x device (4) x payment (3) = 1,728 leaves. The baseline rate differs by
country, channel and account age; every leaf's real rate wobbles ~10 % from window to window.
As in the RS protocol, ``expected`` is the mean of the 4 previous windows and ``actual`` the
window with the incident: one cause segment fixing 1, 2 or 3 dimensions, whose rate is
multiplied by ``--factor`` (default 5; the demo's takeover wave is x6) on every one of its leaves (so every value of the dimensions it does not fix is
hit alike: naming country x web x one account age for a country x web cause is over-specific).
The cause's values are drawn in proportion to traffic. ``--scale`` sets the volume: at 1 a
window has 50,000 logins (about 0.3 expected events a leaf), at 0.2 (the thin worlds of issue
18) 10,000 (about 0.06 a leaf: most leaves see no event at all). Worlds without a cause measure
false causes.

Per setting, on the first segment named: exact, over-specific (the truth plus more
dimensions), over-coarse (a part of the truth), other, none; and F1 over all segments named
(the RS/B0 rule: exact match). "before" is ``localize`` at git revision ``--before``.
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from monitor.attribute.localize import localize  # noqa: E402
from rca import Tally, load_before  # noqa: E402

DIMENSIONS = {
    "country": {f"C{i:02d}": share for i, share in enumerate(
        np.array([30, 14, 10, 8, 7, 6, 5, 5, 4, 4, 4, 3]) / 100.0)},
    "channel": {"web": 0.45, "app": 0.40, "api": 0.15},
    "account_age": {"0-7d": 0.10, "7-30d": 0.15, "30-180d": 0.30, "180d+": 0.45},
    "device": {"android": 0.40, "ios": 0.30, "windows": 0.20, "macos": 0.10},
    "payment": {"card": 0.6, "paypal": 0.25, "wallet": 0.15},
}
BASE_RATE = 0.01
CHANNEL_RISK = {"web": 1.3, "app": 0.8, "api": 1.0}
AGE_RISK = {"0-7d": 2.5, "7-30d": 1.5, "30-180d": 1.0, "180d+": 0.7}
RATE_WOBBLE = 0.1  # relative, per leaf and window
LOGINS_PER_WINDOW = 50_000
HISTORY = 4


def world(seed: int, layer: int, scale: float, factor: float) -> tuple[pd.DataFrame, dict[str, str]]:
    """Leaves of one world and its cause ({} when ``layer`` is 0)."""
    rng = np.random.default_rng(seed)
    names = list(DIMENSIONS)
    country_risk = dict(zip(DIMENSIONS["country"], rng.lognormal(0.0, 0.4, 12)))
    cause: dict[str, str] = {}
    for dim in sorted(rng.choice(len(names), size=layer, replace=False)):
        values, shares = zip(*DIMENSIONS[names[dim]].items())
        cause[names[dim]] = str(rng.choice(values, p=np.asarray(shares) / sum(shares)))
    combos = list(itertools.product(*(DIMENSIONS[d].items() for d in names)))
    share = np.asarray([np.prod([s for _, s in combo]) for combo in combos])
    labels = [[v for v, _ in combo] for combo in combos]
    rate = BASE_RATE * np.asarray([
        country_risk[c] * CHANNEL_RISK[h] * AGE_RISK[a] for c, h, a, _, _ in labels
    ])
    hit = np.asarray([all(dict(zip(names, lab))[k] == v for k, v in cause.items())
                      for lab in labels]) if cause else np.zeros(len(labels), dtype=bool)
    mean_den = LOGINS_PER_WINDOW * scale * share
    n = len(labels)

    def window(factor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        den = rng.poisson(mean_den)
        p = np.clip(rate * factor * rng.lognormal(0.0, RATE_WOBBLE, n), 0.0, 1.0)
        return rng.binomial(den, p).astype(float), den.astype(float)

    past = [window(np.ones(n)) for _ in range(HISTORY)]
    num, den = window(np.where(hit, factor, 1.0))
    frame = pd.DataFrame(labels, columns=names)
    frame["actual_num"], frame["actual_den"] = num, den
    frame["expected_num"] = np.mean([p[0] for p in past], axis=0)
    frame["expected_den"] = np.mean([p[1] for p in past], axis=0)
    return frame, cause


def outcome(found: list[dict[str, str]], cause: dict[str, str]) -> str:
    if not found:
        return "none"
    first, truth = set(found[0].items()), set(cause.items())
    if first == truth:
        return "exact"
    if truth < first:
        return "over-specific"
    if first < truth:
        return "over-coarse"
    return "other"


KINDS = ("exact", "over-specific", "over-coarse", "other", "none")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, default=20, help="worlds per setting")
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 0.2])
    parser.add_argument("--factor", type=float, default=5.0, help="rate factor of the cause")
    parser.add_argument("--before", default="e81164f", help="git revision of 'before'")
    args = parser.parse_args(argv)
    methods = {"before": load_before(args.before), "after": localize}
    print(f"{'method':<7} {'scale':>5} {'layer':>5} {'n':>3}  "
          + " ".join(f"{k:>13}" for k in KINDS) + f" {'F1':>6} {'s/inst':>7}")
    totals = {m: Tally() for m in methods}
    for scale, layer in itertools.product(args.scales, (1, 2, 3, 0)):
        cases = [world(seed=1000 * layer + s, layer=layer, scale=scale, factor=args.factor)
                 for s in range(args.worlds)]
        for name, fn in methods.items():
            counts = dict.fromkeys(KINDS, 0)
            tally = Tally()
            for leaves, cause in cases:
                start = time.perf_counter()
                found = fn(leaves, list(DIMENSIONS), "ratio")
                seconds = time.perf_counter() - start
                truth = {frozenset(cause.items())} if cause else set()
                tally.add(found, truth, seconds)
                totals[name].add(found, truth, seconds)
                if cause:
                    counts[outcome(found, cause)] += 1
                else:
                    counts["other" if found else "none"] += 1
            label = str(layer) if layer else "null"
            print(f"{name:<7} {scale:>5.1f} {label:>5} {len(cases):>3}  "
                  + " ".join(f"{counts[k]:>13}" for k in KINDS)
                  + f" {tally.f1:>6.3f} {tally.mean_seconds:>7.3f}")
    for name, tally in totals.items():
        print(f"{name}: F1 over all settings {tally.f1:.3f}, {tally.mean_seconds:.3f} s/instance")
    print("null worlds: 'other' = worlds where a (false) cause was named.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
