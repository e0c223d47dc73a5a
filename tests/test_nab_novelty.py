"""benchmarks/nab_novelty.py: novelty's uses scored beside a saved replay."""
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import nab_novelty  # noqa: E402

from monitor.detect import novelty  # noqa: E402


def write_set(root: Path) -> tuple[int, str]:
    """One hourly series (one record per hour) with six swinging hours inside a window."""
    rng = np.random.default_rng(0)
    n = 24 * 28
    level = 50 + 10 * np.sin(2 * np.pi * np.arange(n) / 24)
    x = level + rng.normal(0, 1, n)
    t0 = 24 * 21 + 5
    x[t0:t0 + 6] = level[t0:t0 + 6] + 4.0 * np.array([1, -1, 1, -1, 1, -1])
    ts = np.datetime64("2015-01-01T00:00:00") + np.arange(n) * np.timedelta64(3600, "s")
    (root / "cat").mkdir()
    name = "cat/s.csv"
    stamp = lambda t: str(ts[t]).replace("T", " ")  # noqa: E731
    (root / name).write_text("timestamp,value\n" + "".join(f"{stamp(t)},{v:.4f}\n" for t, v in enumerate(x)))
    (root / "windows.json").write_text(json.dumps({name: [[stamp(t0 - 20), stamp(t0 + 20)]]}))
    return t0, name


def test_uses_are_scored_beside_the_saved_pages(tmp_path, capsys):
    t0, name = write_set(tmp_path)
    base = tmp_path / "base.json"
    # the saved detector paged once, far outside the window, and missed the window
    base.write_text(json.dumps({"series": [{"name": name, "pages": [{"hour": 300}]}]}))
    s = nab_novelty.load(tmp_path)[0]
    used = nab_novelty.uses(s, np.array([300]))
    assert used["novelty"].size and all(t0 <= h < t0 + 6 for h in used["novelty"])
    assert set(used["union"]) == {300} | set(used["novelty"])
    assert used["veto"].size == 0  # nothing novel at hour 300
    assert nab_novelty.main(["--data", str(tmp_path), "--base", str(base)]) == 0
    out = capsys.readouterr().out
    rows = {ln.split()[0]: ln.split() for ln in out.splitlines() if ln.split() and ln.split()[1:2] == ["all"]}
    assert rows["base"][5] == "0/1" and rows["union"][5] == "1/1"
    assert float(rows["union"][2]) > float(rows["base"][2])
    assert novelty.ALPHA == 1e-3  # the per-hour rate the benchmark reports against
