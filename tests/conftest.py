"""Shared fixtures: a real project on disk with a real DuckDB source and store."""
from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import duckdb
import pytest

from monitor.config import load_config


@pytest.fixture(autouse=True)
def no_monitor_config(monkeypatch):
    """Every test finds its project from its own cwd or --config, never from a $MONITOR_CONFIG
    that the environment or an earlier test left behind (setenv first, so teardown restores)."""
    monkeypatch.setenv("MONITOR_CONFIG", "")
    monkeypatch.delenv("MONITOR_CONFIG")

FRAUD_RATE = """\
/* ---
name: fraud_rate
title: Fraud rate
owner: risk-oncall
kind: ratio
grain: day
dimensions: [country, channel]
schedule: "0 6 * * *"
bounded: true
detect:
  direction: up
--- */
SELECT date_trunc('day', created_at) AS ts, country, channel,
       count(*) FILTER (WHERE is_fraud) AS numerator,
       count(*) AS denominator
FROM orders
WHERE created_at >= $start AND created_at < $end
GROUP BY ALL
"""

ORDER_COUNT = """\
/* ---
name: order_count
kind: sum
grain: day
dimensions: [country]
schedule: "0 * * * *"
--- */
SELECT date_trunc('day', created_at) AS ts, country, count(*) AS value
FROM orders
WHERE created_at >= $start AND created_at < $end
GROUP BY ALL
"""


def make_source(path: Path, days: int = 20, start: dt.datetime = dt.datetime(2026, 3, 1)) -> None:
    """A deterministic orders table: 4 countries x 2 channels, 10 % fraud in BR."""
    con = duckdb.connect(str(path))
    con.execute(
        """
        CREATE OR REPLACE TABLE orders AS
        SELECT i AS order_id,
               ?::TIMESTAMP + to_minutes((i * 37) % (? * 1440)) AS created_at,
               ['US', 'GB', 'BR', 'DE'][1 + i % 4] AS country,
               ['web', 'app'][1 + (i // 4) % 2] AS channel,
               (i % 4 = 2 AND i % 10 = 2) OR i % 97 = 0 AS is_fraud
        FROM range(?) t(i)
        """,
        [start, days, days * 400],
    )
    con.close()


@pytest.fixture
def project(tmp_path: Path):
    """A project folder: monitor.toml, metrics/, source.duckdb; returns its loaded config."""
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "fraud_rate.sql").write_text(FRAUD_RATE)
    (tmp_path / "metrics" / "order_count.sql").write_text(ORDER_COUNT)
    make_source(tmp_path / "source.duckdb")
    (tmp_path / "monitor.toml").write_text(textwrap.dedent("""\
        [project]
        name = "t"
        [source]
        database = "source.duckdb"
    """))
    return load_config(tmp_path / "monitor.toml")


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """One local SparkSession for every spark test (tests/spark_session.py); the modules that
    use it skip first when pyspark or Java is missing."""
    from spark_session import local_session

    session = local_session(tmp_path_factory.mktemp("warehouse"))
    yield session
    session.stop()
