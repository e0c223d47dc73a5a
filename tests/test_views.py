"""Views are created per metric: a missing view file fails only the metrics that read it, and the
error names the view and its file (issue 19, defect 4)."""
from __future__ import annotations

import textwrap

import duckdb

from monitor.config import load_config
from test_cli import invoke

REFUNDS = """\
/* ---
name: refunds
kind: sum
grain: day
dimensions: [country]
schedule: "0 6 * * *"
--- */
SELECT date_trunc('day', created_at) AS ts, country, count(*) AS value
FROM refund_feed
WHERE created_at >= $start AND created_at < $end
GROUP BY ALL
"""


def test_a_missing_view_file_fails_only_its_metrics(project):
    root = project.root
    (root / "data").mkdir()
    con = duckdb.connect(str(root / "source.duckdb"), read_only=True)
    con.execute(f"COPY orders TO '{root / 'data' / 'orders.parquet'}' (FORMAT parquet)")
    con.close()
    (root / "source.duckdb").unlink()  # the views are the only source now
    (root / "monitor.toml").write_text(textwrap.dedent("""\
        [project]
        name = "t"
        [source.views]
        orders = "data/orders.parquet"
        refund_feed = "data/refunds.parquet"
    """))
    (project.metrics_dir / "refunds.sql").write_text(REFUNDS)
    config = load_config(root / "monitor.toml")
    result = invoke("--config", str(root / "monitor.toml"), "backfill", "--start", "2026-03-01", "--end", "2026-03-05",
                    "--no-detect")
    assert result.exit_code == 1
    assert "computed 2 window(s)" in result.output  # fraud_rate and order_count read `orders` and ran
    failed = [line for line in result.output.splitlines() if line.startswith("failed:")]
    assert len(failed) == 1 and failed[0].startswith("failed: refunds"), result.output
    assert "refund_feed" in failed[0] and "data/refunds.parquet" in failed[0]
    assert "does not exist" in failed[0]
    con = duckdb.connect(str(config.store_path), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM leaves__fraud_rate").fetchone()[0] > 0
    finally:
        con.close()
