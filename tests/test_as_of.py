"""`--as-of` on detect, run, incidents, explain and report; detect names data outside its window."""
from __future__ import annotations

import json

import duckdb

from test_cli import invoke


def _backfill(project):
    cfg = str(project.root / "monitor.toml")
    result = invoke("--config", cfg, "backfill", "--start", "2026-03-01", "--end", "2026-03-21", "--no-detect")
    assert result.exit_code == 0, result.output
    return cfg


def _add_incidents(project):
    con = duckdb.connect(str(project.store_path))
    row = ("INSERT INTO incidents (incident_id, metric, slice, slice_json, start_ts, end_ts, last_ts, direction, kind,"
           " score, severity, status, resolution, why_json, created_at, updated_at) VALUES"
           " (?, 'fraud_rate', '', '{}', ?, ?, ?, 'up', 'spike', 9, 'high', ?, ?, '{}', now(), now())")
    con.execute(row, ["aaaa00000001", "2026-03-05", "2026-03-08", "2026-03-07", "resolved", "recovered"])
    con.execute(row, ["bbbb00000002", "2026-03-15", None, "2026-03-20", "open", None])
    con.close()


def test_detect_names_the_latest_bucket_when_the_data_lie_outside_its_window(project):
    cfg = _backfill(project)
    late = invoke("--config", cfg, "detect", "--as-of", "2027-09-01")
    assert " 0 series" in late.output
    assert "2026-03-20" in late.output and "--as-of" in late.output
    replay = invoke("--config", cfg, "detect", "--as-of", "2026-03-21")
    assert replay.exit_code == 0, replay.output
    assert " 0 series" not in replay.output and "--as-of" not in replay.output


def test_incidents_and_explain_as_of_a_past_time(project):
    cfg = _backfill(project)
    _add_incidents(project)
    now = json.loads(invoke("--config", cfg, "incidents", "--format", "json").output)
    assert {r["incident_id"]: r["status"] for r in now} == {"aaaa00000001": "resolved", "bbbb00000002": "open"}
    then = json.loads(invoke("--config", cfg, "incidents", "--format", "json", "--as-of", "2026-03-06").output)
    assert [(r["incident_id"], r["status"], r["end_ts"]) for r in then] == [("aaaa00000001", "open", None)]
    later = json.loads(invoke("--config", cfg, "incidents", "--format", "json", "--as-of", "2026-03-10").output)
    assert [(r["incident_id"], r["status"]) for r in later] == [("aaaa00000001", "resolved")]
    early = invoke("--config", cfg, "explain", "bbbb", "--as-of", "2026-03-10")
    assert early.exit_code == 1 and "2026-03-15" in early.output
    shown = invoke("--config", cfg, "explain", "aaaa", "--format", "json", "--as-of", "2026-03-06")
    assert shown.exit_code == 0 and json.loads(shown.output)["status"] == "open"


def test_run_and_report_take_as_of(project, tmp_path):
    cfg = _backfill(project)
    run = invoke("--config", cfg, "run", "--no-alerts", "--as-of", "2026-03-21T07:00")
    assert "Nothing due" in run.output  # everything up to 03-21 is computed already
    report = invoke("--config", cfg, "report", "--as-of", "2026-03-21T07:00", "--out", str(tmp_path / "r"))
    assert report.exit_code == 0, report.output
    assert "report for 2026-03-20" in report.output  # the last complete day as of then


def test_bad_as_of_is_one_sentence(project):
    result = invoke("--config", str(project.root / "monitor.toml"), "incidents", "--as-of", "yesterday")
    assert result.exit_code != 0 and "YYYY-MM-DD" in result.output and "Traceback" not in result.output
