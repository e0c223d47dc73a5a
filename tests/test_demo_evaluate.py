"""The demo's scoring rules (monitor/demo/evaluate.py) on a real store with hand-made incidents."""
from __future__ import annotations

import datetime as dt
import json

from monitor.catalog import parse_metric
from monitor.demo.evaluate import evaluate
from monitor.store import Store

METRIC = """\
/* ---
name: decline_rate
kind: ratio
grain: day
dimensions: [payment_method]
schedule: "0 6 * * *"
--- */
SELECT date_trunc('day', at) AS ts, payment_method, 0 AS numerator, 1 AS denominator
FROM t WHERE at >= $start AND at < $end GROUP BY ALL
"""

TRUTH = {
    "start": "2026-06-01", "end": "2026-09-29",
    "incidents": [{"id": "rule_change", "metrics": ["decline_rate"], "type": "rate", "direction": "down",
                   "start": "2026-08-26", "end": None, "segment": {"payment_method": "paypal"}}],
}


def _store_with(tmp_path, incidents: list[tuple[str, str, dt.datetime, dt.datetime | None]]) -> Store:
    store = Store(tmp_path / "store.duckdb")
    now = dt.datetime(2026, 9, 29)
    with store.connect() as con:
        for i, (slice_, direction, start, end) in enumerate(incidents):
            segment = dict(p.split("=") for p in slice_.split("&")) if slice_ else {}
            con.execute(
                "INSERT INTO incidents (incident_id, metric, slice, slice_json, start_ts, end_ts, last_ts, direction,"
                " kind, score, severity, status, why_json, created_at, updated_at)"
                " VALUES (?, 'decline_rate', ?, ?, ?, ?, ?, ?, 'level_shift', 5, 'high', 'resolved', '{}', ?, ?)",
                [f"i{i}", slice_, json.dumps(segment), start, end, start, direction, now, now])
    return store


def _metric(tmp_path):
    metric, problems = parse_metric(METRIC, tmp_path / "decline_rate.sql")
    assert not problems
    return {"decline_rate": metric}


def test_a_detection_with_an_early_start_estimate_is_not_a_false_incident(tmp_path):
    # The total's change-point start lands two days early but the incident runs through the
    # injected change: it pages for the real event, so it is not false. Its slice starts on time.
    store = _store_with(tmp_path, [("", "down", dt.datetime(2026, 8, 24), dt.datetime(2026, 8, 31)),
                                   ("payment_method=paypal", "down", dt.datetime(2026, 8, 26), None)])
    scored = evaluate(store, _metric(tmp_path), TRUTH)
    assert scored.false_incidents["decline_rate"] == 0
    outcome = scored.outcomes[0]
    assert outcome.detected and outcome.delay_buckets == 0


def test_an_incident_that_ends_before_the_injected_event_is_false(tmp_path):
    store = _store_with(tmp_path, [("", "down", dt.datetime(2026, 8, 20), dt.datetime(2026, 8, 23)),
                                   ("", "up", dt.datetime(2026, 7, 1), dt.datetime(2026, 7, 2))])
    scored = evaluate(store, _metric(tmp_path), TRUTH)
    assert scored.false_incidents["decline_rate"] == 2
    assert not scored.outcomes[0].detected


def test_the_first_incident_on_the_event_counts_and_a_late_one_is_not_a_detection(tmp_path):
    # The paypal slice fires on the day; the total joins a day later and takes it in.
    store = _store_with(tmp_path, [("payment_method=paypal", "down", dt.datetime(2026, 8, 26), None),
                                   ("", "down", dt.datetime(2026, 8, 27), None)])
    with store.connect() as con:
        con.execute("UPDATE incidents SET parent_id = 'i1' WHERE incident_id = 'i0'")
    outcome = evaluate(store, _metric(tmp_path), TRUTH).outcomes[0]
    assert outcome.detected and outcome.delay_buckets == 0 and outcome.incident_id == "i0"
    late = tmp_path / "late"
    late.mkdir()
    store = _store_with(late, [("", "down", dt.datetime(2026, 8, 28), None)])
    outcome = evaluate(store, _metric(tmp_path), TRUTH).outcomes[0]
    assert not outcome.detected and outcome.delay_buckets == 2
