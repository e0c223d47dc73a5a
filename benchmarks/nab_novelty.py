"""Sequence novelty against NAB's labelled windows, offline, from one saved replay.

``benchmarks/nab.py --json BASE`` saves every page of a detector without novelty (main before
it). Here novelty (``monitor.detect.novelty``, causal, computed once per series) is scored
with NAB's exact rules in three uses, beside the saved pages:

- ``novelty``: its flags alone page (edge: flagged at t, not at t - 1);
- ``veto``: a saved page is kept only if novelty flagged that hour or the two before, at a
  loose 1e-2 (a confirmation of the band's page);
- ``union``: the saved pages and novelty's (what the default detector now does, up to the
  merge of a novelty flag into a segment already open; ``nab.py`` measures that exactly).

Per category and leave-one-category-out (the use chosen on three categories, scored on the
fourth). The saved pages are read by hour, so BASE must come from the same data.

    .venv/bin/python benchmarks/nab_novelty.py --base BASE.json [--data ../shared/data/nab-dev]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, Path(__file__).resolve().parent):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from nab import DAYS_PER_MONTH, DEFAULT_DATA, Series, load  # noqa: E402
from nab_score import PROFILES, normalised, score_file  # noqa: E402

from monitor.detect import novelty  # noqa: E402

VETO_ALPHA = 1e-2
VETO_LOOK = 3  # the page's hour and the two before


def edges(flag: np.ndarray) -> np.ndarray:
    return np.flatnonzero(flag & ~np.concatenate([[False], flag[:-1]]))


def uses(s: Series, base_hours: np.ndarray) -> dict[str, np.ndarray]:
    obs = s.hourly[None, :]
    p = novelty.tail_probability(novelty.nearest_distance(obs))[0]
    own = edges(p < novelty.ALPHA)
    recent = np.array([p[max(0, h - VETO_LOOK + 1):h + 1].min() for h in base_hours])
    return {
        "base": base_hours,
        "novelty": own,
        "veto": base_hours[recent < VETO_ALPHA] if base_hours.size else base_hours,
        "union": np.union1d(base_hours, own).astype(int),
    }


def file_scores(s: Series, hours: np.ndarray) -> dict:
    recs = [int(s.stamp[h]) for h in hours if s.stamp[h] >= 0]
    scores = {k: score_file(s.timestamps.size, s.windows, recs, prof) for k, prof in PROFILES.items()}
    outside = sum(1 for r in recs if not any(a <= r <= b for a, b in s.windows))
    days = float((s.timestamps.max() - s.timestamps[0]) / np.timedelta64(1, "s")) / 86400.0
    return {"scores": scores, "pages": len(recs), "outside": outside, "days": days}


def aggregate(rows: list[dict]) -> dict:
    out = {k: normalised([r["scores"][k] for r in rows]) for k in PROFILES}
    out["hit"] = sum(r["scores"]["standard"].hit for r in rows)
    out["windows"] = sum(r["scores"]["standard"].windows for r in rows)
    out["pages"] = sum(r["pages"] for r in rows)
    out["outside"] = sum(r["outside"] for r in rows)
    out["per_month"] = out["outside"] / (sum(r["days"] for r in rows) / DAYS_PER_MONTH)
    return out


def line(label: str, a: dict) -> str:
    return (f"{label:<34}{a['standard']:>7.1f}{a['reward_low_fp']:>7.1f}{a['reward_low_fn']:>7.1f}"
            f"{a['hit']:>5}/{a['windows']:<4}{a['pages']:>6}{a['outside']:>5}{a['per_month']:>7.1f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--base", type=Path, required=True, help="nab.py --json of the detector without novelty")
    a = ap.parse_args(argv)
    saved = {s["name"]: np.array(sorted({p["hour"] for p in s["pages"]}), dtype=int)
             for s in json.loads(a.base.read_text())["series"]}
    series = [s for s in load(a.data) if s.name in saved]
    per = {}  # use -> name -> file scores
    for s in series:
        for use, hours in uses(s, saved[s.name]).items():
            per.setdefault(use, {})[s.name] = file_scores(s, hours)
    cats = sorted({s.name.split("/")[0] for s in series})
    print(f"{'use / set':<34}{'std':>7}{'lowFP':>7}{'lowFN':>7}{'hit':>10}{'pages':>6}{'out':>5}{'out/mo':>7}")
    for use, by in per.items():
        print(line(f"{use} all", aggregate(list(by.values()))))
        for c in cats if len(cats) > 1 else []:
            print(line(f"  {c}", aggregate([v for k, v in by.items() if k.startswith(c + "/")])))
    if len(cats) > 1:
        pooled = []
        for c in cats:
            train = lambda use: aggregate([v for k, v in per[use].items() if not k.startswith(c + "/")])  # noqa: E731
            pick = max(per, key=lambda use: train(use)["standard"])
            print(f"held out {c}: {pick} chosen on the other categories")
            pooled += [v for k, v in per[pick].items() if k.startswith(c + "/")]
        print(line("leave-one-category-out", aggregate(pooled)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
