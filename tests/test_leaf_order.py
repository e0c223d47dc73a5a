"""Attribution does not depend on the order the engine grouped the leaf rows in: equal cells
(common with small integer counts) are broken by label, not by position."""
from __future__ import annotations

import numpy as np
import pandas as pd

from monitor.attribute.explain import explain
from monitor.attribute.leaves import normalise_leaves


def _tied_leaves() -> pd.DataFrame:
    # two channels move by exactly the same counts: a tie the search must break the same way
    rows = []
    for channel in ("web", "app", "marketplace"):
        for device in ("ios", "android", "windows"):
            moved = channel in ("web", "app") and device == "ios"
            rows.append({"channel": channel, "device_os": device, "actual": 9.0 if moved else 2.0, "expected": 2.0})
    return pd.DataFrame(rows)


def _small_counts(seed: int) -> pd.DataFrame:
    """Thin integer counts over three dimensions, one segment doubled: many exactly equal cells."""
    rng = np.random.default_rng(seed)
    index = pd.MultiIndex.from_product([["BR", "US", "IN", "DE"], ["web", "app", "marketplace"],
                                        ["0-1d", "2-7d", "8-30d", "1y+"]], names=["country", "channel", "age"])
    frame = index.to_frame(index=False)
    frame["expected"] = rng.poisson(3.0, len(frame)).astype(float)
    lam = np.where(frame["age"] == "8-30d", 6.0, 3.0)
    frame["actual"] = rng.poisson(lam).astype(float)
    return frame


def test_causes_do_not_depend_on_row_order():
    dims = ["country", "channel", "age"]
    for world in range(12):
        leaves = _small_counts(world)
        reference = [c.segment for c in explain(leaves, dims, "sum", baseline_label="b").causes]
        for seed in range(4):
            shuffled = leaves.sample(frac=1, random_state=seed).reset_index(drop=True)
            got = [c.segment for c in explain(shuffled, dims, "sum", baseline_label="b").causes]
            assert got == reference, (world, seed)


def test_codes_follow_sorted_labels_and_rows_follow_codes():
    table = normalise_leaves(_tied_leaves().iloc[::-1], ["channel", "device_os"], "sum")
    assert list(table.labels[0]) == sorted(table.labels[0])
    keys = table.codes[:, 0] * 10 + table.codes[:, 1]
    assert np.all(np.diff(keys) > 0)
