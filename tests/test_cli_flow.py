"""`monitor run`, `detect`, `incidents` and `explain` through click's runner, on a real project:
a DuckDB source where the fraud rate of BR web orders jumps, and the store they fill."""
from __future__ import annotations

import datetime as dt
import json
import os
import textwrap

import duckdb
import pytest
from click.testing import CliRunner

from conftest import FRAUD_RATE, ORDER_COUNT
from monitor.cli import cli
from monitor.config import load_config

START = dt.datetime(2026, 3, 2)
DAYS = 70
ATTACK = START + dt.timedelta(days=56)  # BR web fraud 1 % -> 15 % from here on
END = START + dt.timedelta(days=DAYS)


def make_source(path) -> None:
    """~2400 orders a day in 4 countries x 2 channels; fraud decided by a hash, so it is fixed."""
    with duckdb.connect(str(path)) as con:
        con.execute("""
            CREATE TABLE orders AS
            SELECT ?::TIMESTAMP + to_minutes(i % (? * 1440)::BIGINT) AS created_at,
                   ['US', 'GB', 'BR', 'DE'][1 + (i // 7) % 4] AS country,
                   ['web', 'app'][1 + (i // 3) % 2] AS channel,
                   (hash(i) % 1000) < CASE WHEN (i // 7) % 4 = 2 AND (i // 3) % 2 = 0
                                                AND ?::TIMESTAMP + to_minutes(i % (? * 1440)::BIGINT) >= ?
                                           THEN 150 ELSE 10 END AS is_fraud
            FROM range(?) t(i)
        """, [START, DAYS, START, DAYS, ATTACK, DAYS * 2400])


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("flow")
    (root / "metrics").mkdir()
    (root / "metrics" / "fraud_rate.sql").write_text(FRAUD_RATE)
    (root / "metrics" / "order_count.sql").write_text(ORDER_COUNT)
    make_source(root / "source.duckdb")
    (root / "monitor.toml").write_text(textwrap.dedent("""\
        [project]
        name = "flow"
        [source]
        database = "source.duckdb"
    """))
    config = load_config(root / "monitor.toml")
    first = invoke(config, "backfill", "--start", f"{START:%Y-%m-%d}", "--end", f"{END - dt.timedelta(days=3):%Y-%m-%d}",
                   "--no-detect")
    assert first.exit_code == 0, first.output
    return config


def invoke(config, *args, now: dt.datetime = END + dt.timedelta(hours=7)):
    old = os.getcwd()
    try:
        os.chdir(config.root)
        return CliRunner().invoke(cli, ["--config", str(config.root / "monitor.toml"), "--now", now.isoformat(),
                                        *args], catch_exceptions=False)
    finally:
        os.chdir(old)


@pytest.fixture(scope="module")
def ran(project):
    """`monitor run` computes the days the backfill left out, then detects and explains."""
    return invoke(project, "run", "--no-alerts")


def listed(project, *args) -> list[dict]:
    result = invoke(project, "incidents", "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_run_computes_what_is_due_then_detects(project, ran):
    assert ran.exit_code == 0, ran.output
    # one due window per metric: the 3 days the backfill left out, 4 x 2 + 4 leaves a day
    assert "computed 2 window(s), 36 leaf rows." in ran.output
    assert "detected on 2 metric(s)" in ran.output
    again = invoke(project, "run", "--no-alerts")
    assert again.exit_code == 0 and "Nothing due: every metric is up to date." in again.output


def test_run_finds_the_attack_on_the_total_and_the_slice(project, ran):
    rows = listed(project, "--metric", "fraud_rate")
    total = [r for r in rows if r["slice"] == "" and r["direction"] == "up"]
    assert total, rows
    assert abs((dt.datetime.fromisoformat(total[0]["start_ts"]) - ATTACK).days) <= 1
    assert total[0]["status"] == "open" and total[0]["explanation"]
    assert any(r["segment"].get("country") == "BR" and r["parent_id"] == total[0]["incident_id"] for r in rows)


def test_detect_again_changes_no_incident(project, ran):
    before = listed(project)
    result = invoke(project, "detect")
    assert result.exit_code == 0, result.output
    assert "detected on 2 metric(s)" in result.output and "incident(s)" in result.output
    assert listed(project) == before


def test_detect_of_one_metric_names_only_it(project, ran):
    result = invoke(project, "detect", "--metric", "order_count")
    assert result.exit_code == 0 and "detected on 1 metric(s)" in result.output
    unknown = invoke(project, "detect", "--metric", "nope")
    assert unknown.exit_code != 0 and "nope" in unknown.output


def test_incidents_table_and_filters(project, ran):
    table = invoke(project, "incidents")
    assert table.exit_code == 0
    lines = table.output.splitlines()
    assert lines[0].split()[:3] == ["id", "metric", "slice"]
    rows = listed(project)
    assert len(lines) == 1 + len(rows)
    assert all(r["incident_id"][:12] in table.output for r in rows)
    assert {r["metric"] for r in listed(project, "--metric", "fraud_rate")} == {"fraud_rate"}
    assert all(r["status"] == "open" for r in listed(project, "--status", "open"))
    totals_only = listed(project, "--no-slices")
    assert all(r["slice"] == "" or r["parent_id"] is None for r in totals_only) and len(totals_only) < len(rows)
    assert listed(project, "--since", f"{END + dt.timedelta(days=30):%Y-%m-%d}") == [
        r for r in rows if r["end_ts"] is None]


def test_incidents_as_of_before_the_attack_shows_none_of_it(project, ran):
    early = listed(project, "--as-of", f"{ATTACK - dt.timedelta(days=2):%Y-%m-%d}")
    assert all(dt.datetime.fromisoformat(r["start_ts"]) < ATTACK - dt.timedelta(days=2) for r in early)


def test_explain_prints_the_attribution(project, ran):
    total = next(r for r in listed(project, "--metric", "fraud_rate") if r["slice"] == "" and r["direction"] == "up")
    text = invoke(project, "explain", total["incident_id"][:8])
    assert text.exit_code == 0, text.output
    head = text.output.splitlines()[0]
    assert head.startswith("fraud_rate total: up +") and "[open]" in head
    assert f"detector {total['why']['detector']}" in text.output
    assert "country=BR" in text.output  # the segment that explains it
    as_json = json.loads(invoke(project, "explain", total["incident_id"], "--format", "json").output)
    assert as_json["incident_id"] == total["incident_id"] and as_json["explanation"] == total["explanation"]


def test_explain_unknown_or_ambiguous_ids_say_so(project, ran):
    missing = invoke(project, "explain", "zzzz")
    assert missing.exit_code != 0 and "No incident 'zzzz'" in missing.output
    ambiguous = invoke(project, "explain", "")
    assert ambiguous.exit_code != 0 and "matches" in ambiguous.output and "give more of the id" in ambiguous.output
