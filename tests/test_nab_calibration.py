"""benchmarks/nab_calibration.py: measured against promised rates on a series written to disk."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import nab  # noqa: E402
import nab_calibration  # noqa: E402


def _write(folder: Path, heavy: bool) -> None:
    # six weeks of hourly tweet-like counts (12 records an hour), one labelled burst in week 5
    rng = np.random.default_rng(5)
    n = 24 * 42
    t = np.arange(n)
    level = 300.0 * (1.0 + 0.4 * np.sin(2 * np.pi * t / 24))
    noise = 30.0 * rng.standard_t(2, n) if heavy else 30.0 * rng.standard_normal(n)
    x = np.maximum(level + noise, 0.0)
    x[24 * 33] += 3000.0
    stamps = np.datetime64("2015-01-01T00:00:00") + np.arange(n * 12) * np.timedelta64(5, "m")
    per_record = np.repeat(x / 12.0, 12).round()
    cat = folder / "realTweets"
    cat.mkdir(parents=True)
    lines = ["timestamp,value"] + [f"{str(s).replace('T', ' ')},{int(v)}" for s, v in zip(stamps, per_record)]
    (cat / "one.csv").write_text("\n".join(lines) + "\n")
    a, b = stamps[24 * 33 * 12 - 60], stamps[24 * 33 * 12 + 60]
    (folder / "windows.json").write_text(json.dumps({"realTweets/one.csv": [[str(a).replace("T", " "),
                                                                               str(b).replace("T", " ")]]}))


def _row(folder: Path) -> dict:
    return nab_calibration.one((nab.load(folder)[0], "medium"))


def test_the_burst_is_hit_and_a_heavy_tail_is_measured_heavier(tmp_path):
    _write(tmp_path / "light", heavy=False)
    _write(tmp_path / "heavy", heavy=True)
    light, heavy = _row(tmp_path / "light"), _row(tmp_path / "heavy")
    for r in (light, heavy):
        assert r["proxy"][:2] == (1, 1)  # the labelled burst is hit
        assert sum(r[label][0] for label, _, _ in nab_calibration.AGES) > 24 * 30  # judged hours counted
    # Student-t(2) noise: its own tail is heavier and promises more exceedances at the threshold
    assert heavy["own"][1] > light["own"][1] + 0.15
    assert heavy["own"][0] > light["own"][0]
