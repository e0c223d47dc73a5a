"""An empty result over a window that had data is refused, unless --allow-empty (issue 19, defect 8)."""
from __future__ import annotations

import duckdb

from test_cli import invoke


def _leaf_rows(project) -> int:
    con = duckdb.connect(str(project.store_path), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM leaves__fraud_rate").fetchone()[0]
    finally:
        con.close()


def _incidents(project) -> list:
    con = duckdb.connect(str(project.store_path), read_only=True)
    try:
        return con.execute("SELECT * FROM incidents ORDER BY ALL").fetchall()
    finally:
        con.close()


def test_an_emptied_source_does_not_wipe_history(project):
    cfg = str(project.root / "monitor.toml")
    args = ("--config", cfg, "--now", "2026-03-15", "backfill", "--start", "2026-03-01", "--end", "2026-03-11")
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    before, incidents = _leaf_rows(project), _incidents(project)
    assert before > 0

    con = duckdb.connect(str(project.root / "source.duckdb"))
    con.execute("DELETE FROM orders")
    con.close()

    refused = invoke(*args)
    assert refused.exit_code == 1
    assert "no rows" in refused.output and "--allow-empty" in refused.output
    assert _leaf_rows(project) == before
    assert _incidents(project) == incidents

    allowed = invoke(*args, "--allow-empty")
    assert allowed.exit_code == 0, allowed.output
    assert _leaf_rows(project) == 0


def test_an_empty_window_that_never_had_data_is_fine(project):
    cfg = str(project.root / "monitor.toml")
    result = invoke("--config", cfg, "backfill", "--start", "2025-01-01", "--end", "2025-01-05", "--no-detect")
    assert result.exit_code == 0, result.output
