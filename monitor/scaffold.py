"""`monitor init`: a new project that passes `monitor check` as created."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from monitor.errors import MonitorError

CONFIG = """\
# monitor project config. Paths are relative to this file.
[project]
name = "{name}"
metrics = "metrics"        # one .sql file per metric
store = "store.duckdb"     # results, run log, incidents

[source]
# The metric SQL runs on this DuckDB database (opened read-only)...
# database = "warehouse.duckdb"
# ...and/or on Parquet/CSV files exposed as views:
[source.views]
orders = "data/orders.csv"

[dashboard]
url = "http://localhost:8501"

[alerts]
# Secrets come from environment variables, never from this file.
[[alerts.receivers]]
name = "console"
type = "console"

[alerts.route]
receiver = "console"
"""

SAMPLE_METRIC = """\
/* ---
name: fraud_rate
title: Confirmed fraud rate of orders
owner: risk-oncall
team: risk
kind: ratio
grain: day
dimensions: [country, channel]
schedule: "0 6 * * *"
bounded: true
detect:
  direction: up
--- */
SELECT date_trunc('day', created_at) AS ts,
       country, channel,
       count(*) FILTER (WHERE is_fraud) AS numerator,
       count(*)                         AS denominator
FROM orders
WHERE created_at >= $start AND created_at < $end
GROUP BY ALL
"""

README = """\
# {name}: metric monitoring

- `metrics/*.sql`: one metric per file, a YAML header in a leading comment, then DuckDB SQL
  returning `ts`, one column per dimension, and `numerator`/`denominator` (ratio) or `value` (sum).
- `monitor check` validates every file and dry-runs it on the source.
- `monitor backfill --start 2026-01-01 --end 2026-01-15` computes history; `monitor run` computes
  what is due now; `monitor incidents` lists what was found.
"""


def scaffold_project(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / "monitor.toml").exists():
        raise MonitorError(f"{folder / 'monitor.toml'} already exists; choose an empty folder.")
    name = folder.resolve().name
    files = {
        folder / "monitor.toml": CONFIG.format(name=name),
        folder / "metrics" / "fraud_rate.sql": SAMPLE_METRIC,
        folder / "README.md": README.format(name=name),
        folder / "data" / "orders.csv": _sample_orders(),
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return list(files)


def _sample_orders(days: int = 14) -> str:
    """A small deterministic orders file so the sample metric has data to run on."""
    start = dt.datetime(2026, 1, 1)
    lines = ["order_id,created_at,country,channel,is_fraud"]
    order_id = 0
    for day in range(days):
        for i in range(40):
            order_id += 1
            country = ("US", "GB", "BR", "DE")[i % 4]
            channel = ("web", "app")[(i // 4) % 2]
            fraud = (i * 7 + day * 3) % 53 == 0
            ts = start + dt.timedelta(days=day, minutes=17 * i)
            lines.append(f"{order_id},{ts:%Y-%m-%d %H:%M:%S},{country},{channel},{str(fraud).lower()}")
    return "\n".join(lines) + "\n"
