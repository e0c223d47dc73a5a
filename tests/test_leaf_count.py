"""The leaf rows a backfill reports (and the run log records) are the rows stored, after merging
duplicate keys (issue 19)."""
from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa

from monitor.catalog import load_catalog
from monitor.engine import Window
from monitor.store import Store


def test_duplicate_keys_are_counted_once(project):
    store = Store(project.store_path)
    metric = load_catalog(project.metrics_dir).metrics["fraud_rate"]
    day = dt.datetime(2026, 3, 1)
    rows = pa.table({"ts": pa.array([day] * 3, pa.timestamp("us")), "country": ["US", "US", "BR"],
                     "channel": ["web", "web", "web"], "numerator": [1.0, 2.0, 3.0],
                     "denominator": [10.0, 20.0, 30.0]})
    written = store.write_window(metric, Window(day, day + dt.timedelta(days=1)), rows, trigger="backfill",
                                 started_at=day)
    assert written == 2
    con = duckdb.connect(str(project.store_path), read_only=True)
    try:
        assert con.execute("SELECT rows FROM runs").fetchall() == [(2,)]
        assert con.execute("SELECT count(*) FROM leaves__fraud_rate").fetchone()[0] == 2
    finally:
        con.close()
