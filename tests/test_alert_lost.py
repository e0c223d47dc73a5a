"""A lost alert is never silent: `monitor run` exits non-zero naming it, and the owner gets a meta-alert.

The receiver is a real HTTP server on 127.0.0.1 (tests/slack_server.py) that answers 500 to
everything, so every attempt fails transiently until ``give_up_after`` has passed.
"""
from __future__ import annotations

import datetime as dt
import json
import os

import duckdb
import pytest
from click.testing import CliRunner
from slack_server import INVALID_BLOCKS, OK, SERVER_ERROR, serving

from monitor.cli import cli
from monitor.alert.meta import meta_alert_history, open_meta_alerts
from monitor.store import Store

ENV = "SLACK_WEBHOOK_LOST_TEST"
T0 = dt.datetime(2026, 3, 10, 7, 0)
ALERTS = f"""
[alerts]
give_up_after = "1h"
retry_initial = "1m"
[[alerts.receivers]]
name = "risk-slack"
type = "slack"
webhook_url_env = "{ENV}"
[[alerts.receivers]]
name = "owner"
type = "file"
path = "owner.log"
[alerts.route]
receiver = "risk-slack"
[scheduler]
owner_receiver = "owner"
"""


@pytest.fixture
def slack(monkeypatch):
    yield from serving(monkeypatch, ENV, default=SERVER_ERROR)


@pytest.fixture
def alerting(project):
    with open(project.root / "monitor.toml", "a") as fh:
        fh.write(ALERTS)
    assert run(project, "backfill", "--start", "2026-03-01", "--end", "2026-03-10", "--no-detect").exit_code == 0
    return project


def run(project, *args, now: dt.datetime | None = None):
    cwd = os.getcwd()
    try:
        os.chdir(project.root)
        extra = ["--now", now.isoformat()] if now else []
        return CliRunner().invoke(cli, [*extra, *args], catch_exceptions=False)
    finally:
        os.chdir(cwd)


def add_open_incident(project, incident_id: str, start: dt.datetime) -> None:
    """An open incident of a metric outside the catalog, so detection leaves it as it is."""
    with duckdb.connect(str(project.store_path)) as con:
        con.execute(
            "INSERT INTO incidents (incident_id, metric, slice, slice_json, start_ts, last_ts, direction, kind,"
            " baseline, observed, relative_change, score, severity, status, why_json, created_at, updated_at)"
            " VALUES (?, 'legacy_rate', 'country=BR', '{\"country\": \"BR\"}', ?, ?, 'up', 'level_shift',"
            " 0.01, 0.03, 2.0, 9.0, 'high', 'open', '{}', ?, ?)", [incident_id, start, start, start, start])


def outbox(project) -> dict[str, str]:
    with duckdb.connect(str(project.store_path), read_only=True) as con:
        return dict(con.execute("SELECT summary, status FROM alert_outbox WHERE receiver = 'risk-slack'").fetchall())


def test_an_alert_given_up_makes_run_fail_and_reaches_the_owner(alerting, slack):
    add_open_incident(alerting, "legacy-1", T0 - dt.timedelta(days=1))
    first = run(alerting, "run", now=T0)
    assert first.exit_code == 0, first.output  # a 500 is transient: retried, not lost yet
    assert "alert lost" not in first.output and len(slack.requests) >= 1
    assert set(outbox(alerting).values()) == {"pending"}

    later = run(alerting, "run", now=T0 + dt.timedelta(minutes=90))
    assert later.exit_code == 1, later.output
    lost = [line for line in later.stderr.splitlines() if line.startswith("alert lost: ")]
    assert lost and all(line.startswith("alert lost: risk-slack: '[FIRING] ") for line in lost)
    assert any("Legacy rate" in line and "given up after 2 attempt(s) over 1h 30m" in line and "HTTP 500" in line
               for line in lost)
    assert set(outbox(alerting).values()) == {"failed"}
    assert {r.status for r in slack.requests} == {500}

    [meta] = [a for a in open_meta_alerts(Store(alerting.store_path)) if a["kind"] == "alert_lost"]
    assert meta["subject"] == "risk-slack" and "will never arrive" in meta["message"]
    assert len(meta["details"]["message_ids"]) == len(lost)
    owner_log = (alerting.root / "owner.log").read_text()
    assert "Alerts lost: risk-slack" in owner_log and "Legacy rate" in owner_log

    # Once the receiver takes messages again, the next run is clean and the meta-alert resolves.
    slack.default = OK
    add_open_incident(alerting, "legacy-2", T0 + dt.timedelta(hours=2))
    again = run(alerting, "run", now=T0 + dt.timedelta(hours=3))
    assert again.exit_code == 0, again.output
    assert not [a for a in open_meta_alerts(Store(alerting.store_path)) if a["kind"] == "alert_lost"]
    [closed] = [a for a in meta_alert_history(Store(alerting.store_path)) if a["kind"] == "alert_lost"]
    assert closed["resolution"] == "risk-slack delivered messages again"


def test_a_rejected_alert_is_lost_at_once(alerting, slack):
    slack.default = INVALID_BLOCKS
    add_open_incident(alerting, "legacy-1", T0 - dt.timedelta(days=1))
    result = run(alerting, "run", now=T0)
    assert result.exit_code == 1
    assert "alert lost: risk-slack: '[FIRING] " in result.stderr and "invalid_blocks" in result.stderr
    assert [a["subject"] for a in open_meta_alerts(Store(alerting.store_path)) if a["kind"] == "alert_lost"] \
        == ["risk-slack"]


def test_transient_failures_within_give_up_after_keep_the_message(alerting, slack):
    add_open_incident(alerting, "legacy-1", T0 - dt.timedelta(days=1))
    for minutes in (0, 20, 50):
        result = run(alerting, "run", now=T0 + dt.timedelta(minutes=minutes))
        assert result.exit_code == 0 and "alert lost" not in result.output
    assert set(outbox(alerting).values()) == {"pending"}
    assert not [a for a in open_meta_alerts(Store(alerting.store_path)) if a["kind"] == "alert_lost"]
    assert json.loads(json.dumps(slack.requests[-1].json))["text"].startswith("[FIRING]")
