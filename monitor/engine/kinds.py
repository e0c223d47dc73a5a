"""Row rules of the mean and distribution kinds: counts are never negative, and a mean's
parts are consistent (a sum of squares cannot be below sum^2/count, or the variance the
noise model reads would be negative). Shared by the run-time check and `monitor check`."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

# `monitor check` looks at this much recent data for rows that break the rules: a schema
# check on an empty window cannot see a negative count.
PROBE_DAYS = 7
REL_TOL = 1e-9


def kind_problem(metric, columns: dict[str, pa.ChunkedArray | pa.Array]) -> str | None:
    """The first rule the rows break, as one sentence, or None."""
    def arr(name: str) -> np.ndarray:
        col = columns[name]
        return (col.to_numpy() if hasattr(col, "to_numpy") else np.asarray(col)).astype(float)

    if metric.kind == "distribution":
        bad = int((arr("count") < 0).sum())
        return f"negative count in {bad:,} row(s); a distribution counts events per bucket" if bad else None
    if metric.kind != "mean":
        return None
    total, count, sq = arr("value_sum"), arr("value_count"), arr("value_sq_sum")
    bad = int((count < 0).sum())
    if bad:
        return f"negative value_count in {bad:,} row(s); value_count is count(*) of the averaged rows"
    bad = int((sq < 0).sum())
    if bad:
        return f"negative value_sq_sum in {bad:,} row(s); it must be sum(x * x)"
    bad = int(((count == 0) & ((total != 0) | (sq != 0))).sum())
    if bad:
        return f"value_count is 0 but value_sum or value_sq_sum is not, in {bad:,} row(s)"
    with np.errstate(divide="ignore", invalid="ignore"):
        floor = np.where(count > 0, total * total / count, 0.0)
    bad = int((sq < floor - REL_TOL * np.maximum(np.abs(floor), 1.0)).sum())
    if bad:
        return (f"value_sq_sum < value_sum^2 / value_count in {bad:,} row(s); value_sq_sum must be sum(x * x) "
                "over the same rows as value_sum = sum(x)")
    return None


def probe_window(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    end = dt.datetime(now.year, now.month, now.day) + dt.timedelta(days=1)
    return end - dt.timedelta(days=PROBE_DAYS), end
