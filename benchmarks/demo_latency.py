"""Time to detect: how many buckets of an injected demo incident a live run needs to see.

    .venv/bin/python benchmarks/demo_latency.py [--seeds 1 2 3 4 5 6 7] [--workdir /tmp/demo-seeds]

``benchmarks/demo_detection.py`` scores detection on a back-filled store: an incident
counts when its *estimated start* is within one bucket of the injected start, however many
buckets the detector needed before it could say so. An on-call engineer also asks the
other question: how long after the attack began does the page come? This replays the
live schedule: for each injected rate or mix incident and each of its metrics, detection
(and, for a ``follows`` metric, its leaders' detection and explanation first) runs as it
would at the end of the event's first bucket, then its second, and so on, on a copy of the
seed's store, until an incident of the metric covers the event (the total, or a slice
consistent with the injected segment, in the injected direction). The figure is the number
of the event's buckets that were complete at that run: 1 = paged on the first bucket.

Caveat: the store holds every row as of the world's end, so late data (chargebacks arrive
days after the order) is visible earlier than it would be live; chargeback_rate's figures
are optimistic. The replay starts from a store without incidents, so earlier incident
periods are not kept out of the baselines as they would be live. Volume events are left out.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from demo_detection import run_seed  # noqa: E402

from monitor.attribute.incident_attribution import attribute_incidents  # noqa: E402
from monitor.config import load_config  # noqa: E402
from monitor.demo.evaluate import _consistent  # noqa: E402
from monitor.detect.run_detection import detect_metric  # noqa: E402
from monitor.engine import GRAIN_STEP  # noqa: E402
from monitor.pipeline import detection_order, load_project_catalog  # noqa: E402
from monitor.store import Store  # noqa: E402

MAX_BUCKETS = {"day": 7, "hour": 48}  # give up after this many of the event's buckets


def covering(store: Store, metric, event: dict, segment: dict) -> set[str]:
    """Incidents of ``metric`` in the event's direction, on the total or a slice consistent
    with the injected segment, running at or after the event's start."""
    start = dt.datetime.fromisoformat(event["start"])
    with store.connect(read_only=True) as con:
        rows = con.execute(
            "SELECT incident_id, slice_json FROM incidents WHERE metric = ? AND direction = ?"
            " AND (end_ts IS NULL OR end_ts > ?)", [metric.name, event["direction"], start]).fetchall()
    return {i for i, s in rows if not json.loads(s) or _consistent(json.loads(s), segment)}


def buckets_to_page(store: Store, catalog, metric, event: dict) -> int | None:
    step = GRAIN_STEP[metric.grain]
    start = dt.datetime.fromisoformat(event["start"])
    segment = {k: v for k, v in event["segment"].items() if k in metric.dimensions}
    chain = detection_order([catalog.metrics[n] for n in (*metric.detect.follows, metric.name)])
    before = set()
    for seen in range(0, MAX_BUCKETS[metric.grain] + 1):
        now = start + seen * step  # the run right after the event's `seen`-th bucket closed
        for m in chain:
            detect_metric(store, m, now=now)
            attribute_incidents(store, m)
        found = covering(store, metric, event, segment)
        if seen == 0:
            before = found  # open before the event began: not a page for it
        elif found - before:
            return seen
    return None


def seed_latency(folder: Path, seed: int) -> list[dict]:
    run_seed(folder, seed, reuse=True)  # builds the store if missing, else re-detects on it
    config = load_config(folder / "monitor.toml")
    catalog = load_project_catalog(config)
    truth = json.loads((folder / "ground_truth.json").read_text())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for event in truth["incidents"]:
            if event["type"] not in ("rate", "mix"):
                continue
            for name in event["metrics"]:
                copy = Path(tmp) / f"{event['id']}-{name}.duckdb"
                shutil.copyfile(config.store_path, copy)
                store = Store(copy)
                with store.connect() as con:  # the replay starts from no incidents at all
                    con.execute("DELETE FROM incidents")
                metric = catalog.metrics[name]
                rows.append({"event": event["id"], "metric": name, "seed": seed,
                             "buckets": buckets_to_page(store, catalog, metric, event)})
                copy.unlink()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6, 7])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/monitor-demo-seeds"))
    args = parser.parse_args()
    by_pair: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for seed in args.seeds:
        rows = seed_latency(args.workdir / f"seed{seed}", seed)
        for row in rows:
            by_pair[(row["event"], row["metric"])].append(row)
        print(f"seed {seed}: " + ", ".join(f"{r['event']}/{r['metric']}={r['buckets'] or '-'}" for r in rows),
              flush=True)
    print(f"\n{'incident':22} {'metric':28} {'on bucket 1':>11} {'by bucket 2':>11}  buckets seen per seed (- = not by "
          f"{MAX_BUCKETS['day']} days / {MAX_BUCKETS['hour']} hours)")
    first = second = pairs = 0
    for (event, metric), rows in by_pair.items():
        one = sum(r["buckets"] == 1 for r in rows)
        two = sum(r["buckets"] is not None and r["buckets"] <= 2 for r in rows)
        first, second, pairs = first + one, second + two, pairs + len(rows)
        print(f"{event:22} {metric:28} {one:7d}/{len(rows):<3} {two:7d}/{len(rows):<3}  "
              + ",".join(str(r["buckets"] or "-") for r in rows))
    print(f"\n(incident, metric) pairs paged on the event's first bucket: {first}/{pairs}; by its second: {second}/{pairs}")


if __name__ == "__main__":
    main()
