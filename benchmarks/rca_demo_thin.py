"""The account-takeover wave's attribution on thin demo worlds (issue 18), before and after.

Usage: ``.venv/bin/python benchmarks/rca_demo_thin.py [--seeds 1 2 3 4 5] [--scale 0.2]
[--before REV] [--workdir /tmp/rca-demo-thin] [--reuse]``

Detection on a thin world often starts late or not at all (``demo_detection.py --scale 0.2``
shows it), which says nothing about attribution. So here every seed's world is built at
``--scale`` of the demo's volume, fraud_rate and chargeback_rate are backfilled, and the
incident window is taken from the ground truth: the total from the wave's start, for its first
day, its first 2 days (what the on-call reads on the first and second mornings) and all 4. The
explanation is ``explain_incident``'s, exactly as the pipeline stores it, with ``localize`` of
the working tree ("after") and of git revision ``--before`` ("before") in the same run. Per
seed: the top cause against the injected segment, as exact / over-specific (the truth plus more
dimensions) / too coarse (a part of the truth) / other / none (no segment named).
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import sys
from collections import Counter
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from monitor.attribute.incident_attribution import explain_incident  # noqa: E402
from monitor.demo.project import build_demo_project  # noqa: E402
from monitor.pipeline import backfill_plan, compute, load_project_catalog  # noqa: E402
from monitor.store import Store  # noqa: E402
from rca import load_before  # noqa: E402

# the package re-exports the function ``explain``, which shadows the module's name
explain_module = importlib.import_module("monitor.attribute.explain")

METRICS = ("fraud_rate", "chargeback_rate")
WINDOWS_DAYS = (1, 2, 4)
KINDS = ("exact", "over-specific", "too coarse", "other", "none")


class Wave:
    """The total's episode over the injected window (what explain_incident reads)."""

    def __init__(self, start: dt.datetime, days: int):
        self.incident_id = f"ato-{days}d"
        self.start_ts, self.end_ts = start, start + dt.timedelta(days=days)
        self.last_ts = self.end_ts - dt.timedelta(days=1)
        self.segment: dict[str, str] = {}


def kind_of(top: dict[str, str] | None, truth: dict[str, str]) -> str:
    if not top:
        return "none"
    found, want = set(top.items()), set(truth.items())
    if found == want:
        return "exact"
    if want < found:
        return "over-specific"
    if found < want:
        return "too coarse"
    return "other"


def world(folder: Path, seed: int, scale: float, reuse: bool):
    if not (reuse and (folder / "store.duckdb").exists()):
        project = build_demo_project(folder, seed=seed, scale=scale)
        catalog = load_project_catalog(project.config)
        plan = backfill_plan(catalog.select(list(METRICS)), project.start, project.end)
        result = compute(project.config, plan, trigger="benchmark")
        assert not result.failures, result.failures
        config = project.config
    else:
        from monitor.config import load_config

        config = load_config(folder / "monitor.toml")
    truth = json.loads((folder / "ground_truth.json").read_text())
    return config, load_project_catalog(config), truth


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--scale", type=float, default=0.2)
    parser.add_argument("--before", default="853f727", help="git revision of 'before' (main before issue 18 item 5)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/rca-demo-thin"))
    parser.add_argument("--reuse", action="store_true", help="keep each seed's store")
    args = parser.parse_args(argv)
    before = load_before(args.before)
    methods = {"before": sys.modules[before.__module__].localize_table,
               "after": explain_module.localize_table}
    tally = {(m, metric, d): Counter() for m in methods for metric in METRICS for d in WINDOWS_DAYS}
    for seed in args.seeds:
        config, catalog, truth = world(args.workdir / f"seed{seed}", seed, args.scale, args.reuse)
        wave = next(e for e in truth["incidents"] if e["id"] == "ato_wave")
        start = dt.datetime.fromisoformat(wave["start"])
        store = Store(config.store_path)
        for metric_name in METRICS:
            metric = catalog.metrics[metric_name]
            want = {k: v for k, v in wave["segment"].items() if k in metric.dimensions}
            for days in WINDOWS_DAYS:
                cells = []
                for name, fn in methods.items():
                    with mock.patch.object(explain_module, "localize_table", fn):
                        e = explain_incident(store, metric, Wave(start, days))
                    top = e.causes[0].segment if e.causes else None
                    kind = kind_of(top, want)
                    tally[(name, metric_name, days)][kind] += 1
                    cells.append(f"{name} {kind:<13} {top}")
                print(f"seed {seed} {metric_name:<16} {days}d  " + "  |  ".join(cells), flush=True)
    print(f"\nscale {args.scale}, {len(args.seeds)} seeds; before = localize at {args.before}")
    print(f"{'method':<7} {'metric':<16} {'window':>6}  " + " ".join(f"{k:>13}" for k in KINDS))
    for (name, metric_name, days), counts in tally.items():
        print(f"{name:<7} {metric_name:<16} {days:>5}d  " + " ".join(f"{counts[k]:>13}" for k in KINDS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
