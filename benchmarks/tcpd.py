"""TCPD benchmark: change point detection on the Turing Change Point Dataset (dev copy).

Scores ``monitor.detect.find_change_points`` (one default configuration, no per-series
settings) against two ruptures baselines run in the same process, with the scoring
defined in /work/shared/data/README.md (which follows the TCPD paper's metrics code):

- F1 with a margin of 5 points, precision against the union of annotators, recall averaged
  over annotators, index 0 added to every set;
- cover: mean over annotators of the weighted best Jaccard overlap of segments.

Baselines: ruptures ``Binseg(model="l2")`` and ``Pelt(model="l2")`` with the BIC-like
penalty ``pen = 2 * sigma^2 * log(n)``, where sigma is the robust noise level
``1.4826 * MAD(diff(x)) / sqrt(2)`` (falling back to std(x) when the MAD is 0), and
``min_size=2`` (ruptures' default for l2).

    .venv/bin/python benchmarks/tcpd.py [--data /work/shared/data/tcpd-dev]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from monitor.detect.changepoint import find_change_points  # noqa: E402

DEFAULT_DATA = Path("/work/shared/data/tcpd-dev")
MARGIN = 5


# ----------------------------------------------------------------------------- scoring
def _true_positives(truth: set[int], predictions: set[int], margin: int = MARGIN) -> set[int]:
    """True change points found: each takes the closest unused prediction within the margin."""
    unused = set(predictions)
    found = set()
    for tau in sorted(truth):
        close = sorted((abs(tau - x), x) for x in unused if abs(tau - x) <= margin)
        if not close:
            continue
        found.add(tau)
        unused.remove(close[0][1])
    return found


def f1(annotations: dict, predictions: list[int], margin: int = MARGIN) -> float:
    sets = {k: set(v) | {0} for k, v in annotations.items()}
    preds = set(predictions) | {0}
    union = set().union(*sets.values())
    precision = len(_true_positives(union, preds, margin)) / len(preds)
    recall = sum(len(_true_positives(s, preds, margin)) / len(s) for s in sets.values()) / len(sets)
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def _partition(cps: list[int], n: int) -> list[set[int]]:
    bounds = [0] + sorted(c for c in set(cps) if 0 < c < n) + [n]
    return [set(range(a, b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def _cover_single(truth_parts: list[set[int]], pred_parts: list[set[int]], n: int) -> float:
    total = 0.0
    for a in truth_parts:
        total += len(a) * max(len(a & b) / len(a | b) for b in pred_parts)
    return total / n


def cover(annotations: dict, predictions: list[int], n: int) -> float:
    pred_parts = _partition(predictions, n)
    scores = [_cover_single(_partition(v, n), pred_parts, n) for v in annotations.values()]
    return sum(scores) / len(scores)


def clean(predictions, n: int) -> list[int]:
    """Deduplicate and keep only 1..n-2, as the benchmark does."""
    return sorted({int(p) for p in predictions if 1 <= int(p) <= n - 2})


# The README's checks: if these fail, the numbers below mean nothing.
assert f1({1: [], 2: [10], 3: [50]}, []) == 0.8
assert cover({1: [10, 20], 2: [10], 3: [0, 5]}, [10, 20], n=45) == 0.7962962962962963


# ----------------------------------------------------------------------------- methods
def robust_sigma(x: np.ndarray) -> float:
    d = np.diff(x)
    sigma = 1.4826 * float(np.median(np.abs(d - np.median(d)))) / math.sqrt(2)
    if not sigma > 0:
        sigma = float(np.std(x))
    return sigma if sigma > 0 else 1.0


def _ruptures_bic(algo_name: str):
    import ruptures as rpt

    def run(values: np.ndarray) -> list[int]:
        x = values[np.isfinite(values)]  # the dev series have no nulls; kept for safety
        n = len(x)
        if n < 4:
            return []
        pen = 2.0 * robust_sigma(x) ** 2 * math.log(n)
        algo = getattr(rpt, algo_name)(model="l2", min_size=2, jump=1).fit(x)
        return [b for b in algo.predict(pen=pen) if b < n]

    return run


def zero(values: np.ndarray) -> list[int]:
    return []


METHODS = {
    "ours": lambda v: find_change_points(v),
    "binseg_l2_bic": _ruptures_bic("Binseg"),
    "pelt_l2_bic": _ruptures_bic("Pelt"),
    "zero": zero,
}


# ----------------------------------------------------------------------------- data
def load(data: Path):
    annotations = json.loads((data / "annotations.json").read_text())
    cases = []
    for folder in sorted((data / "datasets").iterdir()):
        name = folder.name
        meta = json.loads((folder / f"{name}.json").read_text())
        raw = meta["series"][0]["raw"]  # univariate: first series only
        values = np.array([np.nan if v is None else float(v) for v in raw])
        cases.append((name, values, annotations[name]))
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--verbose", action="store_true", help="print predicted indices")
    args = parser.parse_args(argv)

    cases = load(args.data)
    names = list(METHODS)
    rows, seconds = [], {m: 0.0 for m in names}
    header = f"{'series':<18}{'n':>5}  " + "  ".join(f"{m:>21}" for m in names)
    print(header)
    print(f"{'':<23}  " + "  ".join(f"{'F1':>10} {'cover':>10}" for _ in names))
    for name, values, ann in cases:
        n = len(values)
        scores = {}
        for m in names:
            t0 = time.perf_counter()
            pred = clean(METHODS[m](values), n)
            seconds[m] += time.perf_counter() - t0
            scores[m] = (f1(ann, pred), cover(ann, pred, n), pred)
        rows.append((name, scores))
        print(f"{name:<18}{n:>5}  " + "  ".join(f"{scores[m][0]:>10.3f} {scores[m][1]:>10.3f}" for m in names))
        if args.verbose:
            print(f"{'':<23}  ours={scores['ours'][2]}")
    real = [r for r in rows if not r[0].startswith("quality_control")]
    print("-" * len(header))
    for label, subset in (("mean 12 real", real), ("mean all", rows)):
        means = {m: (np.mean([s[m][0] for _, s in subset]), np.mean([s[m][1] for _, s in subset])) for m in names}
        print(f"{label + f' ({len(subset)})':<23}  " + "  ".join(f"{means[m][0]:>10.3f} {means[m][1]:>10.3f}" for m in names))
    print("seconds total: " + ", ".join(f"{m} {seconds[m]:.2f}" for m in names))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
