"""Root-cause localisation benchmark: ``monitor.attribute.localize`` on B0 and RS.

Usage: ``.venv/bin/python benchmarks/rca.py [--b0 PATH] [--rs PATH]``

Scoring follows /work/shared/data/README.md exactly: per instance TP = predicted causes equal to a
true cause (exact match, a parent or child is both a FP and a FN), FP = other predictions,
FN = missed causes; F1 = 2*sum(TP) / (2*sum(TP) + sum(FP) + sum(FN)) over all instances.
Seconds per instance time the ``localize`` call only (reading and preparing a case is excluded);
both wall-clock and CPU seconds are shown, since a shared machine inflates wall-clock time.

A naive baseline runs on the same cases in the same run: the single one-dimension value with the
largest weighted change (sum: |actual - expected|; ratio: |actual_num - actual_den * expected
rate|, i.e. the rate change weighted by the segment's current traffic).
"""
from __future__ import annotations

import argparse
import sys
import time
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


def rs_leaves(raw: pd.DataFrame, minute: int) -> tuple[pd.DataFrame, list[str]]:
    """The published RS protocol: actual = the anomalous minute, expected = mean of the previous
    4 minutes (a leaf missing in a minute counts as 0), measure (cnt - value) / cnt."""
    dims = [c for c in raw.columns if c not in ("min", "value", "cnt")]
    frame = raw.assign(num=raw["cnt"] - raw["value"])
    for dim in dims:
        frame[dim] = frame[dim].astype(str)
    now = frame[frame["min"] == minute].groupby(dims)[["num", "cnt"]].sum()
    past_window = (frame["min"] >= minute - 60 * RS_HISTORY_MINUTES) & (frame["min"] < minute)
    past = frame[past_window].groupby(dims)[["num", "cnt"]].sum() / RS_HISTORY_MINUTES
    leaves = (
        now.rename(columns={"num": "actual_num", "cnt": "actual_den"})
        .join(past.rename(columns={"num": "expected_num", "cnt": "expected_den"}), how="outer")
        .fillna(0.0)
        .reset_index()
    )
    return leaves, dims


def load_rs(root: Path) -> list[Case]:
    cases = []
    for item in yaml.safe_load((root / "anomaly.yaml").read_text()):
        raw = pd.read_csv(root / f"{item['data']}.csv.gz")
        leaves, dims = rs_leaves(raw=raw, minute=int(item["timestamp"]))
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
    args = parser.parse_args(argv)
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
