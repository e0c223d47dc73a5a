"""Root-cause localisation benchmark: ``monitor.attribute.localize`` on B0 and RS.

Usage: ``.venv/bin/python benchmarks/rca.py [--b0 PATH] [--rs PATH] [--cv [--before REV]]``

Scoring follows /work/shared/data/README.md exactly: per instance TP = predicted causes equal to a
true cause (exact match, a parent or child is both a FP and a FN), FP = other predictions,
FN = missed causes; F1 = 2*sum(TP) / (2*sum(TP) + sum(FP) + sum(FN)) over all instances.
Seconds per instance time the ``localize`` call only (reading and preparing a case is excluded);
both wall-clock and CPU seconds are shown, since a shared machine inflates wall-clock time.

A naive baseline runs on the same cases in the same run: the single one-dimension value with the
largest weighted change (sum: |actual - expected|; ratio: |actual_num - actual_den * expected
rate|, i.e. the rate change weighted by the segment's current traffic).

``--cv`` cross-validates every choice made on data: each method ("before" = ``localize`` as of
git revision ``--before``, "after" = the working tree) has a small grid of its options; for each
RS case left out, the option set with the best F1 on the other 29 cases is chosen and scored on
the one left out (ties go to the defaults, then to grid order). CV F1 pools the left-out
predictions. Beside it: dev F1 with the defaults, the best grid F1 on all 30 (optimistic), and
B0 F1 and seconds per instance with the defaults, all in the same run. Then, as a check of
robustness to the protocol, RS F1 with the defaults when the expected value is the mean of 2..8
previous minutes instead of 4 (same cases, same truth).
"""
from __future__ import annotations

import argparse
import inspect
import itertools
import subprocess
import sys
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.attribute.localize import localize  # noqa: E402

DEFAULT_B0 = Path("/work/shared/data/rca-b0-dev")
DEFAULT_RS = Path("/work/shared/data/rca-rs-dev")
RS_HISTORY_MINUTES = 4

Cause = frozenset  # frozenset of (dimension, value) pairs


@dataclass
class Case:
    name: str
    group: str
    leaves: pd.DataFrame
    dimensions: list[str]
    kind: str
    truth: set[Cause]


@dataclass
class Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)

    def add(
        self, predicted: list[dict[str, str]], truth: set[Cause], seconds: float, cpu: float = 0.0
    ) -> None:
        found = {frozenset(p.items()) for p in predicted}
        self.tp += len(found & truth)
        self.fp += len(found - truth)
        self.fn += len(truth - found)
        self.seconds.append(seconds)
        self.cpu_seconds.append(cpu)

    @property
    def f1(self) -> float:
        denom = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denom if denom else 1.0

    @property
    def mean_seconds(self) -> float:
        return float(np.mean(self.seconds)) if self.seconds else 0.0

    @property
    def mean_cpu_seconds(self) -> float:
        return float(np.mean(self.cpu_seconds)) if self.cpu_seconds else 0.0


# ------------------------------------------------------------------------------------------
# Loading


def parse_b0_truth(text: str) -> set[Cause]:
    causes = set()
    for cause in str(text).split(";"):
        pairs = [kv.split("=", 1) for kv in cause.split("&") if kv]
        causes.add(frozenset((k.strip(), v.strip()) for k, v in pairs))
    return causes


def load_b0(root: Path) -> list[Case]:
    cases = []
    for setting in sorted(p for p in root.iterdir() if p.is_dir()):
        info = pd.read_csv(setting / "injection_info.csv")
        for ts, truth in zip(info["timestamp"], info["set"]):
            raw = pd.read_csv(setting / f"{ts}.csv.gz", dtype={d: str for d in "abcd"})
            leaves = raw.rename(columns={"real": "actual", "predict": "expected"})
            cases.append(
                Case(
                    name=f"{setting.name}/{ts}",
                    group=setting.name.replace("B_cuboid_", ""),
                    leaves=leaves,
                    dimensions=["a", "b", "c", "d"],
                    kind="sum",
                    truth=parse_b0_truth(truth),
                )
            )
    return cases


def rs_leaves(
    raw: pd.DataFrame, minute: int, history: int = RS_HISTORY_MINUTES
) -> tuple[pd.DataFrame, list[str]]:
    """The published RS protocol: actual = the anomalous minute, expected = mean of the previous
    4 minutes (a leaf missing in a minute counts as 0), measure (cnt - value) / cnt."""
    dims = [c for c in raw.columns if c not in ("min", "value", "cnt")]
    frame = raw.assign(num=raw["cnt"] - raw["value"])
    for dim in dims:
        frame[dim] = frame[dim].astype(str)
    now = frame[frame["min"] == minute].groupby(dims)[["num", "cnt"]].sum()
    past_window = (frame["min"] >= minute - 60 * history) & (frame["min"] < minute)
    past = frame[past_window].groupby(dims)[["num", "cnt"]].sum() / history
    leaves = (
        now.rename(columns={"num": "actual_num", "cnt": "actual_den"})
        .join(past.rename(columns={"num": "expected_num", "cnt": "expected_den"}), how="outer")
        .fillna(0.0)
        .reset_index()
    )
    return leaves, dims


def load_rs(root: Path, history: int = RS_HISTORY_MINUTES) -> list[Case]:
    cases = []
    for item in yaml.safe_load((root / "anomaly.yaml").read_text()):
        raw = pd.read_csv(root / f"{item['data']}.csv.gz")
        leaves, dims = rs_leaves(raw=raw, minute=int(item["timestamp"]), history=history)
        causes = item["cause"] if isinstance(item["cause"], list) else [item["cause"]]
        truth = {frozenset((str(k), str(v)) for k, v in c.items()) for c in causes}
        cases.append(
            Case(name=item["data"], group="RS", leaves=leaves, dimensions=dims, kind="ratio",
                 truth=truth)
        )
    return cases


# ------------------------------------------------------------------------------------------
# Methods


def naive_top_value(leaves: pd.DataFrame, dimensions: list[str], kind: str) -> list[dict[str, str]]:
    """Baseline: the one-dimension value with the largest weighted change."""
    if kind == "sum":
        change = leaves["actual"] - leaves["expected"]
    else:
        e_den = leaves["expected_den"].sum()
        overall = leaves["expected_num"].sum() / e_den if e_den else 0.0
        # A leaf without history is judged against the overall rate.
        rate = np.where(
            leaves["expected_den"] > 0,
            leaves["expected_num"] / leaves["expected_den"].where(leaves["expected_den"] > 0, 1),
            overall,
        )
        change = leaves["actual_num"] - leaves["actual_den"] * rate
    best, best_value = None, -1.0
    for dim in dimensions:
        per_value = change.groupby(leaves[dim].astype(str)).sum().abs()
        if per_value.empty:
            continue
        if per_value.max() > best_value:
            best, best_value = {dim: str(per_value.idxmax())}, float(per_value.max())
    return [best] if best else []


METHODS: dict[str, Callable[..., list[dict[str, str]]]] = {
    "localize": localize,
    "naive": naive_top_value,
}


def load_before(rev: str) -> Callable[..., list[dict[str, str]]]:
    """``localize`` as it was at git revision ``rev`` (for before/after figures in one run)."""
    root = Path(__file__).resolve().parents[1]

    def at_rev(name: str) -> types.ModuleType | None:
        shown = subprocess.run(
            ["git", "show", f"{rev}:monitor/attribute/{name}.py"], cwd=root,
            capture_output=True, text=True,
        )
        if shown.returncode != 0:  # the file did not exist yet
            return None
        module = types.ModuleType(f"{name}_{rev}")
        sys.modules[module.__name__] = module  # dataclasses look their module up by name
        exec(compile(shown.stdout, f"{name}@{rev}", "exec"), module.__dict__)
        return module

    counts = at_rev("count_evidence")
    module = at_rev("localize")
    if counts is not None and "count_evidence" in module.__dict__:
        # the helper module as it was at ``rev`` too, not the working tree's
        module.__dict__["count_evidence"] = counts
    return module.localize


# Options searched by the cross-validation, per method (the defaults come first).
CV_GRIDS: dict[str, dict[str, tuple]] = {
    "before": {"first_z": (3.0, 2.0, 4.0), "merge_purity": (0.25, 0.1, 0.5),
               "merge_z": (2.0, 1.0, 3.0)},
    "after": {"first_z": (3.0, 2.0, 4.0), "child_evidence": (3.84, 0.0, 9.0)},
}


def _cv_grid(fn: Callable[..., list[dict[str, str]]]) -> dict[str, tuple]:
    """The grid whose options ``fn`` takes ("before" at a revision may already be "after")."""
    accepted = inspect.signature(fn).parameters
    return next(g for g in (CV_GRIDS["after"], CV_GRIDS["before"]) if all(k in accepted for k in g))


def grid(options: dict[str, tuple]) -> list[dict[str, float]]:
    keys = list(options)
    return [dict(zip(keys, values)) for values in itertools.product(*options.values())]


def cross_validate(
    cases: list[Case], fn: Callable[..., list[dict[str, str]]], configs: list[dict[str, float]]
) -> dict[str, float]:
    """Leave-one-out over ``cases`` of choosing the best config (see the module docstring)."""
    counts = np.zeros((len(configs), len(cases), 3))  # tp, fp, fn
    seconds = []
    for j, case in enumerate(cases):
        for i, config in enumerate(configs):
            start = time.perf_counter()
            found = {frozenset(p.items()) for p in fn(case.leaves, case.dimensions, case.kind,
                                                       **config)}
            if i == 0:
                seconds.append(time.perf_counter() - start)
            counts[i, j] = (len(found & case.truth), len(found - case.truth),
                            len(case.truth - found))

    def f1(c: np.ndarray) -> float:
        denom = 2 * c[0] + c[1] + c[2]
        return float(2 * c[0] / denom) if denom else 1.0

    pooled = np.zeros(3)
    chosen = []
    for j in range(len(cases)):
        rest = counts.sum(axis=1) - counts[:, j]
        scores = np.asarray([f1(r) for r in rest])
        best = int(np.argmax(scores >= scores.max() - 1e-12))  # first best: defaults first
        chosen.append(best)
        pooled += counts[best, j]
    all_scores = [f1(counts[i].sum(axis=0)) for i in range(len(configs))]
    return {
        "dev": all_scores[0],
        "cv": f1(pooled),
        "best": max(all_scores),
        "best_config": configs[int(np.argmax(all_scores))],
        "default_chosen": sum(c == 0 for c in chosen) / len(cases),
        "seconds": float(np.mean(seconds)),
    }


def report_cv(rs_cases: list[Case], b0_cases: list[Case], before: str, rs_root: Path) -> None:
    methods = {"before": load_before(before), "after": localize}
    print(f"\nCross-validation: leave-one-out over {len(rs_cases)} RS dev cases "
          f"(before = git {before}, after = working tree)")
    print(f"  {'method':<8}{'grid':>5} {'RS dev':>7} {'RS CV':>7} {'best':>6} {'dflt':>5}"
          f" {'s/inst':>7} {'B0 F1':>6} {'s/inst':>7}")
    for name, fn in methods.items():
        configs = grid(_cv_grid(fn))
        cv = cross_validate(rs_cases, fn, configs)
        b0 = Tally()
        for case in b0_cases:
            start = time.perf_counter()
            predicted = fn(case.leaves, case.dimensions, case.kind)
            b0.add(predicted, case.truth, time.perf_counter() - start)
        print(f"  {name:<8}{len(configs):>5} {cv['dev']:>7.3f} {cv['cv']:>7.3f} {cv['best']:>6.3f}"
              f" {cv['default_chosen']:>5.2f} {cv['seconds']:>7.3f} {b0.f1:>6.3f}"
              f" {b0.mean_seconds:>7.3f}   best grid: {cv['best_config']}")
    naive = Tally()
    for case in rs_cases:
        naive.add(naive_top_value(case.leaves, case.dimensions, case.kind), case.truth, 0.0)
    print(f"  naive RS F1 {naive.f1:.3f} (no options). dflt = share of folds choosing the "
          "defaults; best = best grid point on all cases (optimistic).")
    histories = (2, 3, 4, 6, 8)
    print("\n  RS F1 with the defaults when 'expected' is the mean of h previous minutes:")
    print(f"  {'method':<8}" + "".join(f"{'h=' + str(h):>7}" for h in histories) + f"{'mean':>7}")
    cases_by_h = {h: load_rs(rs_root, history=h) for h in histories}
    for name, fn in methods.items():
        scores = []
        for h in histories:
            tally = Tally()
            for case in cases_by_h[h]:
                tally.add(fn(case.leaves, case.dimensions, case.kind), case.truth, 0.0)
            scores.append(tally.f1)
        print(f"  {name:<8}" + "".join(f"{f:>7.3f}" for f in scores) + f"{np.mean(scores):>7.3f}")


def run(cases: list[Case], verbose: bool = False) -> dict[str, dict[str, Tally]]:
    """Tallies per method and group ("all" + each group)."""
    results: dict[str, dict[str, Tally]] = {m: {} for m in METHODS}
    for case in cases:
        for method, fn in METHODS.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            predicted = fn(case.leaves, case.dimensions, case.kind)
            seconds, cpu = time.perf_counter() - start, time.process_time() - start_cpu
            for key in ("all", case.group):
                results[method].setdefault(key, Tally()).add(predicted, case.truth, seconds, cpu)
            if verbose and method == "localize":
                found = {frozenset(p.items()) for p in predicted}
                mark = "ok " if found == case.truth else "BAD"
                truth = [dict(t) for t in case.truth]
                print(f"  {mark} {case.name}: predicted={predicted} truth={truth}")
    return results


def report(title: str, results: dict[str, dict[str, Tally]]) -> None:
    print(f"\n{title}")
    groups = ["all"] + sorted(g for g in results["localize"] if g != "all")
    print(
        f"  {'group':<22}{'n':>4}  {'F1':>6} {'s/inst':>8} {'cpu s':>7}"
        f"   {'naive F1':>8} {'s/inst':>8}"
    )
    for g in groups:
        ours, base = results["localize"][g], results["naive"][g]
        print(
            f"  {g:<22}{len(ours.seconds):>4}  {ours.f1:>6.3f} {ours.mean_seconds:>8.3f}"
            f" {ours.mean_cpu_seconds:>7.3f}   {base.f1:>8.3f} {base.mean_seconds:>8.3f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--b0", type=Path, default=DEFAULT_B0)
    parser.add_argument("--rs", type=Path, default=DEFAULT_RS)
    parser.add_argument("--verbose", action="store_true", help="print every case")
    parser.add_argument("--cv", action="store_true", help="cross-validate, before and after")
    parser.add_argument("--before", default="e81164f", help="git revision of 'before'")
    args = parser.parse_args(argv)
    if args.cv:
        b0 = load_b0(args.b0) if args.b0.exists() else []
        report_cv(rs_cases=load_rs(args.rs), b0_cases=b0, before=args.before, rs_root=args.rs)
        return 0
    for title, loader, root in (("B0 (sum)", load_b0, args.b0), ("RS (ratio)", load_rs, args.rs)):
        if not root.exists():
            print(f"\n{title}: {root} not found, skipped")
            continue
        cases = loader(root)
        if args.verbose:
            print(f"\n{title} cases")
        results = run(cases, verbose=args.verbose)
        report(title=f"{title}: {len(cases)} instances from {root}", results=results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
