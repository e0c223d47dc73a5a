"""NULL is a slice of its own, distinct from the string '(null)' (issue 19, defect 9)."""
from __future__ import annotations

import datetime as dt

import duckdb

from monitor.catalog import load_catalog
from monitor.store import Store
from test_cli import invoke

COUNTRY_COUNT = """\
/* ---
name: by_country
kind: sum
grain: day
dimensions: [country]
schedule: "0 6 * * *"
--- */
SELECT date_trunc('day', created_at) AS ts, country, count(*) AS value
FROM tagged
WHERE created_at >= $start AND created_at < $end
GROUP BY ALL
"""


def test_null_and_the_string_null_stay_apart(project):
    con = duckdb.connect(str(project.root / "source.duckdb"))
    # Per day: 1 row with a NULL country, 2 with the text '(null)', 4 with '\\(null)', 8 with 'US'.
    con.execute("""
        CREATE TABLE tagged AS
        SELECT TIMESTAMP '2026-03-01' + to_days(d) + to_minutes(i) AS created_at,
               CASE WHEN i < 1 THEN NULL WHEN i < 3 THEN '(null)' WHEN i < 7 THEN '\\(null)' ELSE 'US' END AS country
        FROM range(3) a(d), range(15) b(i)
    """)
    con.close()
    (project.metrics_dir / "by_country.sql").write_text(COUNTRY_COUNT)
    result = invoke("--config", str(project.root / "monitor.toml"), "backfill", "--metric", "by_country",
                    "--start", "2026-03-01", "--end", "2026-03-04", "--no-detect")
    assert result.exit_code == 0, result.output
    metric = load_catalog(project.metrics_dir).metrics["by_country"]
    frame = Store(project.store_path).series(metric, by=("country",))
    per_day = frame[frame.ts == dt.datetime(2026, 3, 1)].set_index("country")["value"].to_dict()
    assert sorted(per_day.values()) == [1.0, 2.0, 4.0, 8.0]  # four slices, none merged
    assert per_day["US"] == 8.0
    assert len(set(per_day)) == 4
