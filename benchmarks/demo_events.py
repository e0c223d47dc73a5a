"""Change events on the demo world over several seeds (issue 22, item 6).

    .venv/bin/python benchmarks/demo_events.py [--seeds 1 2 3 4 5 6 7] [--workdir /tmp/monitor-demo-events] [--reuse]

Each seed builds the demo world (its change log: rule R-142 before the decline-rule change,
the summer-sale promotion, and a fraud-model rollout in JP six hours before the ATO wave in
GB, near in time but out of scope), backfills, detects, explains and links, exactly as
`monitor demo`. Scored against ground_truth.json:

- per injected change with an event, per metric: is the incident the demo scores for it
  (monitor/demo/evaluate.py's choice; for the volume-only sale, the total starting in the
  sale) linked to its event, and to nothing else; for the promotion, is it expected (no page);
- false links: incidents linked to an event although they do not overlap that event's
  injected change on its metric (the overlap rule of evaluate.py's false incidents), counted
  over all incidents (slices too) and over paging ones (totals, slices not under a total);
- the same figures re-linked in memory with other settings (window, after), to show how
  much the defaults matter. Seed 7 is the one looked at while choosing ``after``; the others
  are held out.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.demo_detection import run_seed  # noqa: E402
from monitor.config import load_config  # noqa: E402
from monitor.demo.evaluate import AFTER_END_GRACE  # noqa: E402
from monitor.engine import GRAIN_STEP  # noqa: E402
from monitor.events.linking import link_incidents  # noqa: E402
from monitor.events.settings import load_event_settings  # noqa: E402
from monitor.events.store import read_events  # noqa: E402
from monitor.incident import Incident, read_incidents  # noqa: E402
from monitor.store import Store  # noqa: E402

DEV_SEEDS = {7}
VARIANTS = {"default": None, "window 6h": {"window": dt.timedelta(hours=6)},
            "window 3d": {"window": dt.timedelta(days=3)}, "after 0 (first bucket only)": {"after": dt.timedelta(0)}}


def score_seed(folder: Path, scored) -> dict:
    config = load_config(folder / "monitor.toml")
    truth = json.loads((folder / "ground_truth.json").read_text())
    settings = load_event_settings(config)
    store = Store(config.store_path)
    with store.connect(read_only=True) as con:
        incidents = read_incidents(con)
        grains = dict(con.execute("SELECT metric, grain FROM metric_definitions").fetchall())
        events = read_events(con)
    by_title = {e.title: e.event_id for e in events}
    truth_of_event = {by_title[t["title"]]: t for t in truth["events"] if t["title"] in by_title}
    changes = {i["id"]: i for i in truth["incidents"]}
    world_end = dt.datetime.fromisoformat(truth["end"])
    steps = {i.metric: GRAIN_STEP[grains[i.metric]] for i in incidents}
    primary = {(o.truth_id, o.metric): o.incident_id for o in scored.outcomes if o.detected}
    for t in truth["events"]:  # the volume-only sale: the total of each named metric starting inside it
        change = changes.get(t["truth"] or "")
        if change and change["type"] == "volume":
            a, b = dt.datetime.fromisoformat(t["ts"]), dt.datetime.fromisoformat(t["end"])
            for metric in change["metrics"]:
                hit = [i for i in incidents if i.metric == metric and i.is_total and a <= i.start_ts < b]
                primary[(change["id"], metric)] = hit[0]["incident_id"] if hit else None

    def overlaps(incident: Incident, change: dict) -> bool:
        if incident.metric not in change["metrics"] + change.get("visible_on", []):
            return False
        step = steps[incident.metric]
        a = dt.datetime.fromisoformat(change["start"]) - step
        b = (dt.datetime.fromisoformat(change["end"]) if change["end"] else world_end) + AFTER_END_GRACE
        end = incident.end_ts or world_end
        return incident.start_ts < b and a < max(end, incident.start_ts + step)

    def measure(link_options: dict | None) -> dict:
        if link_options is None:
            with store.connect(read_only=True) as con:
                rows = con.execute("SELECT incident_id, event_id, expected FROM incident_events").fetchall()
        else:
            opts = {"window": settings.window, "after": settings.after, "causes": settings.causes, **link_options}
            rows = [(l.incident_id, l.event_id, l.expected)
                    for l in link_incidents(incidents, events, steps=steps, **opts)]
        linked, expected = defaultdict(set), set()
        for incident_id, event_id, exp in rows:
            linked[incident_id].add(event_id)
            if exp:
                expected.add(incident_id)
        out = {"pairs": [], "false_all": 0, "false_paging": 0, "incidents": len(incidents),
               "paging": sum(1 for i in incidents if i.is_total or i.parent_id is None)}
        for t in truth["events"]:
            change = changes.get(t["truth"] or "")
            if change is None:
                continue
            event_id = by_title.get(t["title"])
            for metric in change["metrics"]:
                iid = primary.get((change["id"], metric))
                mine = [i.incident_id for i in incidents if i.metric == metric and overlaps(i, change)]
                out["pairs"].append({"change": change["id"], "metric": metric, "found": iid is not None,
                                     "linked": iid is not None and event_id in linked.get(iid, ()),
                                     "only": iid is not None and linked.get(iid, set()) == {event_id},
                                     "expected": iid in expected if t["expected"] else None,
                                     "any": any(event_id in linked.get(i, ()) for i in mine)})
        for incident in incidents:
            for event_id in linked.get(incident.incident_id, ()):
                t = truth_of_event.get(event_id)
                change = changes.get((t or {}).get("truth") or "")
                if change is None or not overlaps(incident, change):
                    out["false_all"] += 1
                    out["false_paging"] += incident.is_total or incident.parent_id is None
        return out

    return {name: measure(options) for name, options in VARIANTS.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6, 7])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/monitor-demo-events"))
    parser.add_argument("--reuse", action="store_true", help="keep each seed's store, re-run detection only")
    args = parser.parse_args()
    results = {}
    for seed in args.seeds:
        folder = args.workdir / f"seed{seed}"
        scored, _, seconds = run_seed(folder, seed, args.reuse)
        results[seed] = score_seed(folder, scored)
        d = results[seed]["default"]
        pairs = d["pairs"]
        print(f"seed {seed}: linked {sum(p['linked'] for p in pairs)}/{len(pairs)}, only to its event "
              f"{sum(p['only'] for p in pairs)}/{len(pairs)}, found {sum(p['found'] for p in pairs)}/{len(pairs)}, "
              f"false links {d['false_all']} (paging {d['false_paging']}) of {d['incidents']} incidents "
              f"({seconds:.0f}s)", flush=True)

    def pooled(seeds, variant: str) -> str:
        pairs = [p for s in seeds for p in results[s][variant]["pairs"]]
        found = [p for p in pairs if p["found"]]
        exp = [p for p in found if p["expected"] is not None]
        false_all = sum(results[s][variant]["false_all"] for s in seeds)
        false_paging = sum(results[s][variant]["false_paging"] for s in seeds)
        n_inc = sum(results[s][variant]["incidents"] for s in seeds)
        return (f"linked {sum(p['linked'] for p in found)}/{len(found)} found "
                f"(of {len(pairs)} injected pairs), only its event {sum(p['only'] for p in found)}/{len(found)}, "
                f"expected (no page) {sum(bool(p['expected']) for p in exp)}/{len(exp)}, "
                f"false links {false_all} ({false_paging} paging) over {n_inc} incidents")

    seeds = list(results)
    held = [s for s in seeds if s not in DEV_SEEDS]
    dev = [s for s in seeds if s in DEV_SEEDS]
    print(f"\n{'change':<22} {'metric':<28} {'found':>6} {'linked':>7} {'only':>6} {'expected':>9} {'any linked':>10}")
    rows = defaultdict(lambda: [0, 0, 0, 0, 0, 0])
    for s in seeds:
        for p in results[s]["default"]["pairs"]:
            r = rows[(p["change"], p["metric"])]
            r[0] += p["found"]
            r[1] += p["linked"]
            r[2] += p["only"]
            r[3] += bool(p["expected"])
            r[4] += p["expected"] is not None
            r[5] += p["any"]
    for (change, metric), (found, linked, only, exp, has_exp, any_) in rows.items():
        e = f"{exp}/{found}" if has_exp else "-"
        print(f"{change:<22} {metric:<28} {found:>3}/{len(seeds):<2} {linked:>4}/{found:<2} {only:>3}/{found:<2} {e:>9}"
              f" {any_:>7}/{len(seeds)}")
    print("found: the demo's scoring found an incident for the change on that metric (else nothing to link);\n"
          "any linked: some incident overlapping the change on that metric (slices too) is linked to its event.")
    for variant in VARIANTS:
        print(f"\n[{variant}]")
        if held:
            print(f"  held-out seeds {held}: {pooled(held, variant)}")
        if dev:
            print(f"  dev seed {dev}: {pooled(dev, variant)}")


if __name__ == "__main__":
    main()
