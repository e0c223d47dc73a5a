"""`monitor report`, the [report] settings, the default date and sending the digest."""
from __future__ import annotations

import datetime as dt
import json
import textwrap

import click
import pytest
from click.testing import CliRunner

from monitor.cli import Context
from monitor.config import load_config
from monitor.errors import ConfigError, MonitorError
from monitor.report import (
    SETTINGS, ReportSettings, daily_report_job, default_report_date, generate_report, report_settings, send_digest,
)
from monitor.report.cli import report as report_command
from tests.report_fixtures import D, build_project


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    return build_project(root)


@pytest.fixture(scope="module")
def generated(project, tmp_path_factory):
    return generate_report(project, date=D, out_dir=tmp_path_factory.mktemp("out"))


def run(config, *args, now="2026-03-21T06:10"):
    group = click.Group("monitor", commands={"report": report_command})
    return CliRunner().invoke(group, list(args), obj=Context(str(config.root / "monitor.toml"), False, now),
                              catch_exceptions=False)


def test_cli_writes_the_last_complete_day_by_default(project, tmp_path):
    result = run(project, "report", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "report-2026-03-20.html").is_file() and (tmp_path / "report-2026-03-20.md").is_file()
    assert "report for 2026-03-20: 4 metrics, 1 new / 2 ongoing / 2 resolved incidents" in result.output
    digest = run(project, "report", "--date", "2026-03-19", "--out", str(tmp_path), "--print-digest")
    assert digest.exit_code == 0 and digest.output.startswith("*Risk metrics daily report - 2026-03-19*")


def test_cli_errors_are_one_sentence(project, tmp_path):
    result = run(project, "report", "--date", "20/03/2026", "--out", str(tmp_path))
    assert result.exit_code == 1
    assert result.output.strip() == "Error: Report date '20/03/2026' is not a date; use YYYY-MM-DD."
    (tmp_path / "monitor.toml").write_text('[project]\nname = "empty"\n')
    missing = run(load_config(tmp_path / "monitor.toml"), "report", "--out", str(tmp_path))
    assert missing.exit_code == 1 and "does not exist yet; run `monitor backfill`" in missing.output


@pytest.mark.parametrize("now, timezone, expected", [
    (dt.datetime(2026, 3, 21, 6, 10), "UTC", dt.date(2026, 3, 20)),
    (dt.datetime(2026, 3, 21, 0, 0), "UTC", dt.date(2026, 3, 20)),
    (dt.datetime(2026, 3, 20, 23, 59), "UTC", dt.date(2026, 3, 19)),
    (dt.datetime(2026, 3, 21, 6, 10), "America/Los_Angeles", dt.date(2026, 3, 19)),  # still 3/20 there
    (dt.datetime(2026, 3, 20, 23, 30), "Asia/Tokyo", dt.date(2026, 3, 20)),  # already 3/21 there
])
def test_default_date_is_the_last_complete_day(project, now, timezone, expected):
    assert default_report_date(now, ReportSettings(timezone=timezone)) == expected


def write_config(tmp_path, report_section: str):
    (tmp_path / "monitor.toml").write_text("[project]\nname = \"x\"\n" + textwrap.dedent(report_section))
    return load_config(tmp_path / "monitor.toml")


def test_settings_are_validated_and_documented(tmp_path):
    with pytest.raises(ConfigError) as err:
        report_settings(write_config(tmp_path, '[report]\ntimee = "07:00"\ntime = "7am"\ntop_movers = -1\n'))
    message = str(err.value)
    assert "unknown key(s) ['timee']" in message and "valid keys are" in message and "'time'" in message
    assert "[report] time must be a 24-hour time" in message and "[report] top_movers must be" in message
    settings = report_settings(write_config(tmp_path, '[report]\ntime = "06:45"\nout_dir = "published"\n'))
    assert settings.cron == "45 6 * * *"
    assert settings.out_dir == tmp_path / "published"
    assert settings.link(tmp_path / "published" / "r.html") == (tmp_path / "published" / "r.html").as_uri()
    for setting in SETTINGS.values():  # every setting carries the help the docs are written from
        assert setting.help.strip().endswith(".") and setting.parse(setting.default) == setting.default


def test_send_digest_hands_the_digest_and_link_to_the_notifiers(project, generated):
    report = generated
    sent = []

    def sender(config, message, *, receivers, now):
        sent.append((message, receivers, now))
        return "ok"

    now = dt.datetime(2026, 3, 21, 7)
    assert send_digest(project, report, now=now, sender=sender) == "ok"
    message, receivers, when = sent[0]
    assert receivers == () and when == now
    assert message["url"] == "https://reports.example.com/risk/report-2026-03-20.html"
    assert message["text"] == report.digest and message["url"] in message["text"]
    assert set(message["incident_ids"]) == {i.incident_id for i in report.data.all_incidents()}
    assert message["incidents"] == {"new": 1, "ongoing": 2, "resolved": 2}


def test_daily_job_writes_the_files_and_sends(project):
    sent = []
    report = daily_report_job(project, now=dt.datetime(2026, 3, 21, 7),
                              sender=lambda config, message, **kw: sent.append(message["date"]))
    assert report.date == D and sent == ["2026-03-20"]
    assert report.html_path == project.root / "reports" / "report-2026-03-20.html" and report.html_path.is_file()


def test_without_a_sender_the_digest_goes_through_the_alert_receivers(tmp_path):
    # No sender given: the daily job sends through the alert module's real outbox and notifiers.
    project = build_project(tmp_path)
    toml = project.root / "monitor.toml"
    toml.write_text(toml.read_text() + textwrap.dedent("""\
        [[alerts.receivers]]
        name = "log"
        type = "file"
        path = "digest.jsonl"
        format = "jsonl"
        [alerts.route]
        receiver = "log"
    """))
    report = daily_report_job(load_config(toml), now=dt.datetime(2026, 3, 21, 7))
    assert report.html_path.is_file()
    lines = (project.root / "digest.jsonl").read_text().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["url"] == "https://reports.example.com/risk/report-2026-03-20.html"


def test_without_alerting_set_up_sending_says_so(project, generated):
    with pytest.raises(ConfigError, match=r"alerting is not configured .*\[report\] send = false"):
        send_digest(project, generated, now=dt.datetime(2026, 3, 21, 7))
