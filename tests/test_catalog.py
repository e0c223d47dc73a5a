"""Every catalog failure mode names the file and line; good files still load."""
from __future__ import annotations

from pathlib import Path

import pytest

from monitor.catalog import load_catalog, parse_metric
from tests.conftest import FRAUD_RATE, ORDER_COUNT


def problems_of(text: str) -> list[str]:
    metric, problems = parse_metric(text, Path("m.sql"))
    assert metric is None
    return [str(p) for p in problems]


def test_valid_file_loads_into_frozen_metric():
    metric, problems = parse_metric(FRAUD_RATE, Path("fraud_rate.sql"))
    assert problems == []
    assert metric.name == "fraud_rate" and metric.kind == "ratio" and metric.grain == "day"
    assert metric.dimensions == ("country", "channel")
    assert metric.detect.direction == "up" and metric.bounded is True
    assert metric.sql.startswith("SELECT") and metric.sql_line == 13
    with pytest.raises(AttributeError):
        metric.name = "other"  # frozen


@pytest.mark.parametrize(
    "edit, expected",
    [
        (("kind: ratio", "kind: ratio\n  bad: [indent"), "m.sql:6: invalid YAML"),
        (("owner: risk-oncall", "ownr: risk-oncall"), "m.sql:4: unknown key 'ownr' (did you mean 'owner'?)"),
        (("grain: day\n", ""), "missing required key 'grain'"),
        (("name: fraud_rate", "name: Fraud-Rate"), "m.sql:2: name: must be lowercase"),
        (("kind: ratio", "kind: average"), "m.sql:5: kind: must be one of ratio, sum"),
        (("grain: day", "grain: week"), "m.sql:6: grain: must be one of hour, day"),
        (('schedule: "0 6 * * *"', 'schedule: "0 25 * * *"'), "m.sql:8: schedule: must be a valid 5-field cron"),
        (("$start", "'2026-01-01'"), "query never uses $start"),
        (("AND created_at < $end", ""), "query never uses $end"),
        (("direction: up", "direction: sideways"), "m.sql:11: detect.direction: must be one of up, down, both"),
        (("direction: up", "directon: up"), "m.sql:11: unknown key detect.directon (did you mean 'direction'?)"),
        (("dimensions: [country, channel]", "dimensions: [country, country]"), "m.sql:7: dimensions: must be a list of distinct"),
    ],
)
def test_each_failure_mode_names_file_and_line(edit, expected):
    old, new = edit
    assert old in FRAUD_RATE
    found = problems_of(FRAUD_RATE.replace(old, new, 1))
    assert any(expected in p for p in found), found


def test_missing_header_and_unclosed_header():
    assert "m.sql:1: missing YAML header" in problems_of("SELECT 1")[0]
    assert "never closed" in problems_of("/* ---\nname: x\n")[0]


def test_all_problems_reported_at_once_and_good_files_still_load(tmp_path: Path):
    (tmp_path / "good.sql").write_text(ORDER_COUNT)
    (tmp_path / "bad.sql").write_text(FRAUD_RATE.replace("kind: ratio", "kind: avg").replace("grain: day", "grain: week"))
    (tmp_path / "dup.sql").write_text(ORDER_COUNT.replace("schedule:", "title: again\nschedule:"))
    catalog = load_catalog(tmp_path)
    assert list(catalog.metrics) == ["order_count"]
    messages = [str(p) for p in catalog.problems]
    assert any("bad.sql:5: kind" in m for m in messages)
    assert any("bad.sql:6: grain" in m for m in messages)
    dup = [m for m in messages if "duplicate metric name 'order_count'" in m]
    assert len(dup) == 1 and str(tmp_path / "good.sql") in dup[0]


def test_definition_hash_ignores_presentation_but_not_sql():
    base, _ = parse_metric(FRAUD_RATE, Path("a.sql"))
    retitled, _ = parse_metric(FRAUD_RATE.replace("title: Fraud rate", "title: Fraud rate (orders)"), Path("a.sql"))
    changed, _ = parse_metric(FRAUD_RATE.replace("FILTER (WHERE is_fraud)", "FILTER (WHERE NOT is_fraud)"), Path("a.sql"))
    assert base.definition_hash == retitled.definition_hash
    assert base.definition_hash != changed.definition_hash
