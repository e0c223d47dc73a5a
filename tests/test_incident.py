"""monitor/incident.py: the one incident type, its id, and its row in a real store."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json

import numpy as np
import pytest
from alert_fixtures import EXPLANATION, T0, add_incident, make_store

from monitor.attribute.explain import Explanation
from monitor.incident import COLUMNS, Incident, decode_explanation, incident_id, read_incidents, read_store


class Metric:  # the two fields Incident.detected reads of a catalog metric
    name = "fraud_rate"
    severity = "high"


def test_ids_are_those_existing_stores_hold():
    # Pinned from the code that wrote today's stores (monitor.detect.incident_rows before this
    # module): a changed id would orphan every stored label, ack, alert group and link.
    assert incident_id("fraud_rate", "country=BR", dt.datetime(2026, 3, 2)) == "d1db0bd8bab0"
    assert incident_id("fraud_rate", "", dt.datetime(2026, 3, 2)) == "a5097c48d6a0"
    assert incident_id("order_count", "merchant=a%26b%3Dc", dt.datetime(2026, 3, 2, 13)) == "6b7305831d44"


def test_a_detected_finding_writes_the_row_detection_wrote_before():
    found = Incident.detected(
        Metric, {"device_os": "android", "country": "BR"}, start=dt.datetime(2026, 3, 2, 6), end=None,
        last_ts=dt.datetime(2026, 3, 3), direction="up", kind="level_shift", baseline=np.float64(0.012),
        observed=0.017, relative_change=float("nan"), score=np.float32(6.5), resolution="recovered",
        why={"detector": "seasonal_band", "threshold": np.float64(3.0), "n": np.int64(4), "arr": np.array([1, 2])})
    row = found.to_row()
    legacy = {  # the old 13-keyword incident_row's output for the same finding
        "incident_id": "c4ed96702486", "metric": "fraud_rate", "slice": "country=BR&device_os=android",
        "slice_json": '{"country": "BR", "device_os": "android"}', "parent_id": None,
        "start_ts": dt.datetime(2026, 3, 2, 6), "end_ts": None, "last_ts": dt.datetime(2026, 3, 3),
        "direction": "up", "kind": "level_shift", "baseline": 0.012, "observed": 0.017, "relative_change": None,
        "score": 6.5, "severity": "high", "status": "open", "resolution": None,
        "why_json": '{"arr": [1, 2], "detector": "seasonal_band", "n": 4, "threshold": 3.0}'}
    assert {k: row[k] for k in legacy} == legacy
    assert list(row) == list(COLUMNS) and found.fingerprint == found.incident_id
    closed = dataclasses.replace(found, end_ts=dt.datetime(2026, 3, 4), status="resolved")
    assert closed.as_of(dt.datetime(2026, 3, 3)).is_open and not closed.as_of(dt.datetime(2026, 3, 5)).is_open


def test_a_stored_row_reads_back_typed_and_writes_back_the_same(tmp_path):
    store = make_store(tmp_path)
    total = add_incident(store, explanation=EXPLANATION, why_json=json.dumps(
        {"detector": "follows", "follows": {"metric": "login_rate", "incident_id": "abc", "start": "2026-03-01",
                                            "segment": {"country": "BR"}}}))
    add_incident(store, segment={"country": "BR"}, parent=total, acked_by="ana", acked_at=T0)
    with store.connect() as con:
        stored = [dict(zip(COLUMNS, r)) for r in con.execute(
            f"SELECT {', '.join(COLUMNS)} FROM incidents ORDER BY slice").fetchall()]
        read = read_incidents(con, order="slice")
    def decoded(row):  # the JSON columns as data: to_row writes keys sorted, as detection does
        return {k: json.loads(v) if k.endswith("_json") and v else v for k, v in row.items()}

    assert [decoded(i.to_row()) for i in read] == [decoded(r) for r in stored]  # from_row / to_row round-trip
    top, br = read
    assert isinstance(top.explanation, Explanation) and top.explanation.causes[0].segment == {"country": "BR"}
    assert top.why.detector == "follows" and top.why.follows.incident_id == "abc" and top.is_total
    assert br.segment == {"country": "BR"} and br.parent_id == top.incident_id and br.acked_by == "ana"
    assert br.why.follows is None and br.explanation is None
    assert [i.incident_id for i in read_store(store, "acked_by = ?", ["ana"])] == [br.incident_id]


@pytest.mark.parametrize("raw", ["", "not json", "{}", '{"causes": []}', "[1, 2]", None])
def test_an_explanation_not_written_by_to_dict_reads_as_none(raw):
    assert decode_explanation(raw) is None
    assert decode_explanation(json.dumps(EXPLANATION)).to_dict()["causes"][0]["explained_share"] == 0.62
