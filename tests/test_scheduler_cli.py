"""`monitor serve --once` and `monitor status` through click, and meta-alerts reaching the owner."""
from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import cli
from monitor.config import load_config
from monitor.errors import ConfigError
from monitor.scheduler import SETTINGS, InlineRunner, SchedulerService
from monitor.scheduler.cli import attach

attach(cli)
DOCS = Path(__file__).resolve().parents[1] / "docs" / "scheduler.md"


def invoke(project, *args):
    return CliRunner().invoke(cli, ["--config", str(project.root / "monitor.toml"), *args], catch_exceptions=False)


def test_serve_once_catches_up_and_status_shows_it(project):
    bad = project.metrics_dir / "order_count.sql"
    bad.write_text(bad.read_text().replace("FROM orders", "FROM missing_table"))
    result = invoke(project, "--now", "2026-03-10T07:00", "serve", "--once", "--isolation", "inline")
    assert result.exit_code == 1  # a metric failed: say so to cron
    # computed, then judged by the pipeline's own detection and alerting
    assert "fraud_rate: computed 2/2 window(s) [2026-01-13 00:00, 2026-03-10 00:00), 72 rows" in result.output
    assert "; detected and alerted" in result.output
    assert "order_count: FAILED: order_count failed for" in result.output and "missing_table" in result.output

    table = invoke(project, "--now", "2026-03-10T09:30", "status")
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0] == "serve: never started on this store"
    row = next(line for line in lines if line.startswith("fraud_rate"))
    assert re.split(r"\s{2,}", row) == ["fraud_rate", "ok", "2026-03-10 00:00", "0", "2026-03-10 07:00", "0",
                                        "2026-03-11 06:00"]
    row = next(line for line in lines if line.startswith("order_count"))
    assert re.split(r"\s{2,}", row)[1:2] == ["failing"] and row.endswith("2026-03-10 10:00")
    assert "last errors:" in table.output and "missing_table" in table.output
    assert "[metric_failing] order_count failed 1 time(s) in a row" in table.output

    data = json.loads(invoke(project, "--now", "2026-03-12T07:00", "status", "--format", "json").output)
    metrics = {m["metric"]: m for m in data["metrics"]}
    assert metrics["fraud_rate"]["computed_until"] == "2026-03-10T00:00:00"
    assert metrics["fraud_rate"]["lag_buckets"] == 2 and metrics["fraud_rate"]["state"] == "lagging"
    assert metrics["order_count"]["failures"] == 1 and metrics["order_count"]["state"] == "failing"
    assert data["serve"]["running"] is False and data["writer_lock"] is None
    assert [a["kind"] for a in data["meta_alerts"]] == ["metric_failing"]


def test_status_works_before_anything_ran_and_lists_broken_files(project):
    (project.metrics_dir / "broken.sql").write_text("SELECT 1")
    result = invoke(project, "--now", "2026-03-10T07:00", "status")
    assert result.exit_code == 0, result.output
    assert "never run" in result.output
    assert "broken.sql:1: missing YAML header" in result.output


def test_bad_scheduler_settings_are_one_clear_error(project):
    toml = project.root / "monitor.toml"
    toml.write_text(toml.read_text() + '[scheduler]\ntimeout = "soon"\n')
    result = invoke(project, "serve", "--once")
    assert result.exit_code == 1
    assert "[scheduler] timeout must be a duration like '30s', '5m', '4h' or '1d', got 'soon'" in result.output
    assert "Traceback" not in result.output


def _with_owner(project, receiver_block: str, owner: str = "toolkit-owner"):
    toml = project.root / "monitor.toml"
    toml.write_text(toml.read_text() + receiver_block + f'[scheduler]\nowner_receiver = "{owner}"\n')
    return load_config(toml)


OWNER_FILE = """
[alerts]
[[alerts.receivers]]
name = "toolkit-owner"
type = "file"
path = "meta-alerts.log"
"""


def test_meta_alerts_reach_the_owner_through_the_alert_outbox(project):
    config = _with_owner(project, OWNER_FILE)
    path = project.metrics_dir / "order_count.sql"
    good = path.read_text()
    path.write_text(good.replace("FROM orders", "FROM missing_table"))
    clock = lambda: dt.datetime(2026, 3, 10, 7)  # noqa: E731
    service = SchedulerService(config, clock=clock, runner=InlineRunner(), after_compute=None)
    service.run_metric("order_count")
    log = (project.root / "meta-alerts.log").read_text()
    assert "[META] Metric run failing: order_count failed 1 time(s) in a row" in log
    assert "missing_table" in log

    service.run_metric("order_count")  # still failing: one open alert, no second message before meta_repeat
    assert (project.root / "meta-alerts.log").read_text() == log

    path.write_text(good)
    service.reload()
    service.run_metric("order_count")
    log = (project.root / "meta-alerts.log").read_text()
    assert "[META RESOLVED] Metric run failing: order_count ran successfully again after 2 failed attempt(s)" in log


def test_an_unknown_owner_receiver_is_a_config_error(project):
    config = _with_owner(project, OWNER_FILE, owner="nobody")
    with pytest.raises(ConfigError, match="owner_receiver 'nobody' is not an \\[alerts\\] receiver; valid "
                                          "receivers: toolkit-owner"):
        SchedulerService(config)


def test_every_setting_and_command_is_documented():
    text = DOCS.read_text()
    missing = [s.name for s in SETTINGS if f"`{s.name}`" not in text]
    assert not missing, f"settings not in docs/scheduler.md: {missing}"
    for command in ("monitor serve", "monitor serve --once", "monitor status", "writer_lock", "is_stale"):
        assert command in text
