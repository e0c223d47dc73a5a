"""NaN and infinite measures are rejected with the metric's file:line, nothing stored (issue 19, defect 7)."""
from __future__ import annotations

import duckdb
import pytest

from test_cli import invoke

BAD_VALUE = """\
/* ---
name: avg_amount
kind: sum
grain: day
dimensions: [country]
schedule: "0 6 * * *"
--- */
SELECT date_trunc('day', created_at) AS ts, country,
       sum(CASE WHEN country = 'BR' THEN {bad} ELSE 1 END) AS value
FROM orders
WHERE created_at >= $start AND created_at < $end
GROUP BY ALL
"""


@pytest.mark.parametrize("bad", ["'nan'::DOUBLE", "'inf'::DOUBLE", "-'inf'::DOUBLE"])
def test_nan_or_inf_measure_fails_the_window_naming_file_and_line(project, bad):
    path = project.metrics_dir / "avg_amount.sql"
    path.write_text(BAD_VALUE.format(bad=bad))
    result = invoke("--config", str(project.root / "monitor.toml"), "backfill", "--metric", "avg_amount",
                    "--start", "2026-03-01", "--end", "2026-03-05", "--no-detect")
    assert result.exit_code == 1
    assert f"{path}:8" in result.output  # the line where the query starts
    assert "NaN or infinite" in result.output and "value" in result.output
    con = duckdb.connect(str(project.store_path), read_only=True)
    try:
        stored = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'leaves__avg_amount'"
                             ).fetchone()[0]
        if stored:
            assert con.execute("SELECT count(*) FROM leaves__avg_amount").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM runs WHERE metric = 'avg_amount' AND status = 'ok'").fetchone()[0] == 0
    finally:
        con.close()
