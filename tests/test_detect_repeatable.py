"""Re-running detection on an unchanged store changes no incident (issue 19): the result is a
function of the data, the human labels and the as-of time, not of what earlier runs stored."""
from __future__ import annotations

import duckdb
import pytest

from monitor.demo.project import build_demo_project
from monitor.pipeline import backfill_plan, compute, detect_and_attribute, load_project_catalog

KEYS = "incident_id, start_ts, end_ts, status, resolution, parent_id"


def _incidents(path) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(f"SELECT {KEYS} FROM incidents ORDER BY incident_id").fetchall()
    finally:
        con.close()


@pytest.mark.slow
def test_detect_twice_on_the_same_store_changes_no_incident(tmp_path):
    project = build_demo_project(tmp_path / "demo", days=100, scale=0.5)
    config = project.config
    catalog = load_project_catalog(config)
    metrics = [m for m in catalog.select(None) if m.grain == "day"]
    result = compute(config, backfill_plan(metrics, project.start, project.end), trigger="demo")
    assert not result.failures
    detect_and_attribute(config, metrics, now=project.end)
    first = _incidents(config.store_path)
    assert len(first) > 20
    detect_and_attribute(config, metrics, now=project.end)
    second = _incidents(config.store_path)
    assert len(second) == len(first)
    assert second == first
