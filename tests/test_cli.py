"""The command line through click's runner, on real project folders."""
from __future__ import annotations

import os

import duckdb
from click.testing import CliRunner

from monitor.cli import cli


def invoke(*args, cwd=None):
    runner = CliRunner()
    old = os.getcwd()
    try:
        if cwd:
            os.chdir(cwd)
        return runner.invoke(cli, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)


def test_init_output_passes_check_and_backfills(tmp_path):
    result = invoke("init", str(tmp_path / "p"))
    assert result.exit_code == 0, result.output
    check = invoke("check", cwd=tmp_path / "p")
    assert check.exit_code == 0, check.output
    assert "All metrics OK" in check.output
    back = invoke("backfill", "--start", "2026-01-01", "--end", "2026-01-15", "--no-detect", cwd=tmp_path / "p")
    assert back.exit_code == 0, back.output
    con = duckdb.connect(str(tmp_path / "p" / "store.duckdb"), read_only=True)
    assert con.execute("SELECT sum(denominator) FROM leaves__fraud_rate").fetchone()[0] == 14 * 40
    con.close()
    again = invoke("init", str(tmp_path / "p"))
    assert again.exit_code == 1 and "already exists" in again.output


def test_check_reports_every_problem_and_exits_non_zero(project):
    (project.metrics_dir / "broken.sql").write_text("/* ---\nname: broken\nkind: avg\n--- */\nSELECT 1")
    bad_sql = (project.metrics_dir / "order_count.sql").read_text().replace("FROM orders", "FROM missing_table")
    (project.metrics_dir / "order_count.sql").write_text(bad_sql)
    result = invoke("--config", str(project.root / "monitor.toml"), "check")
    assert result.exit_code == 1
    assert "broken.sql:3: kind: must be one of ratio, sum" in result.output
    assert "missing required key 'grain'" in result.output
    assert "order_count" in result.output and "missing_table" in result.output
    assert "Traceback" not in result.output


def test_backfill_runs_good_metrics_despite_a_broken_file(project):
    (project.metrics_dir / "broken.sql").write_text("not a metric")
    result = invoke("--config", str(project.root / "monitor.toml"), "backfill", "--start", "2026-03-01",
                    "--end", "2026-03-05", "--no-detect")
    assert result.exit_code == 1  # the broken file is reported...
    assert "broken.sql:1: missing YAML header" in result.output
    assert "computed 2 window(s)" in result.output  # ...and both good metrics still ran


def test_errors_are_one_sentence_and_debug_shows_the_trace(project):
    cfg = str(project.root / "monitor.toml")
    result = invoke("--config", cfg, "backfill", "--start", "2026-03-05", "--end", "2026-03-01")
    assert result.exit_code == 1
    assert result.output.strip() == "Error: --end 2026-03-01 must be after --start 2026-03-05."
    unknown = invoke("--config", cfg, "backfill", "--start", "2026-03-01", "--end", "2026-03-02", "--metric", "nope")
    assert unknown.exit_code == 1 and "Unknown or invalid metric(s) nope" in unknown.output
    missing = invoke("--config", str(project.root / "nope.toml"), "check")
    assert missing.exit_code == 1 and "does not exist" in missing.output and "Traceback" not in missing.output
    debug = invoke("--debug", "--config", cfg, "backfill", "--start", "2026-03-05", "--end", "2026-03-01")
    assert debug.exit_code == 1 and "Traceback" in debug.output


def test_stale_definition_warning_tells_how_to_backfill(project):
    cfg = str(project.root / "monitor.toml")
    assert invoke("--config", cfg, "backfill", "--start", "2026-03-01", "--end", "2026-03-03", "--no-detect").exit_code == 0
    path = project.metrics_dir / "order_count.sql"
    path.write_text(path.read_text().replace("count(*) AS value", "count(DISTINCT order_id) AS value"))
    result = invoke("--config", cfg, "check")
    assert "order_count changed since its history was computed" in result.output
    assert "monitor backfill --metric order_count" in result.output
