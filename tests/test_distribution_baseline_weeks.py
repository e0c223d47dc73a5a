"""A distribution incident's baseline is the mean of the weeks before that have data: the
number of those weeks is counted in whole weeks (DuckDB's ``//`` on the DOUBLE ``epoch()``
does not floor, so it once counted every distinct day as a week: 28 "weeks" in 4)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from monitor.attribute.distribution import distribution_leaves
from monitor.catalog import load_catalog

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("weeks_with_data", [4, 2])
def test_before_is_the_mean_of_the_weeks_with_data(weeks_with_data):
    metric = load_catalog(ROOT / "metrics").metrics["model_score"]
    start = dt.datetime(2026, 7, 29)
    first = start - dt.timedelta(days=7 * weeks_with_data)
    con = duckdb.connect()
    con.execute('CREATE TABLE "leaves__model_score" (ts TIMESTAMP, country VARCHAR, channel VARCHAR,'
                ' device_os VARCHAR, payment_method VARCHAR, bucket VARCHAR, "count" DOUBLE)')
    # one leaf, 3 events a day in bucket 0.1, every day of the baseline weeks and the incident week
    days = [first + dt.timedelta(days=k) for k in range((start - first).days + 7)]
    con.executemany('INSERT INTO "leaves__model_score" VALUES (?, \'US\', \'web\', \'ios\', \'card\', \'0.1\', 3)',
                    [[d] for d in days])
    frame, dims = distribution_leaves(con, metric, start=start, end=start + dt.timedelta(days=7),
                                      segment={}, weeks=4)
    assert dims == list(metric.dimensions)
    assert frame["after"].sum() == 21  # 7 days x 3
    assert frame["before"].sum() == pytest.approx(21)  # a baseline week is like the incident week
