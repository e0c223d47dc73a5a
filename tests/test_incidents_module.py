"""monitor/incidents.py: incidents read back from a real store, their JSON columns decoded,
and the table and explanation text the CLI prints."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from monitor.attribute.explain import explain
from monitor.config import load_config
from monitor.incident import incident_id
from monitor.errors import MonitorError
from monitor.format import format_relative, format_share
from monitor.incidents import get_incident, list_incidents, render_explanation, render_table
from monitor.store import Store
from tests.test_explain import DIMS, _card_attack

T0 = dt.datetime(2026, 4, 1)
# a real stored explanation: BR card fraud 1 % -> 5 %
EXPLANATION = json.loads(json.dumps(explain(_card_attack(), DIMS, "ratio", baseline_label="trailing baseline").to_dict()))
TOP = EXPLANATION["causes"][0]


def row(metric: str, segment: dict, start: dt.datetime, *, end=None, parent=None, explanation=None) -> dict:
    label = "&".join(f"{k}={v}" for k, v in sorted(segment.items()))
    return {"incident_id": incident_id(metric, label, start), "metric": metric, "slice": label,
            "slice_json": json.dumps(segment), "parent_id": parent, "start_ts": start, "end_ts": end,
            "last_ts": end or start + dt.timedelta(days=2), "direction": "up", "kind": "level_shift",
            "baseline": 0.01, "observed": 0.02, "relative_change": 1.0, "score": 7.25, "severity": "high",
            "status": "resolved" if end else "open", "resolution": "recovered" if end else None,
            "why_json": json.dumps({"detector": "default"}),
            "explanation_json": json.dumps(explanation) if explanation else None,
            "created_at": start, "updated_at": start}


@pytest.fixture
def config(tmp_path):
    (tmp_path / "monitor.toml").write_text('[project]\nname = "t"\n[source]\ndatabase = "s.duckdb"\n')
    config = load_config(tmp_path / "monitor.toml")
    total = row("fraud_rate", {}, T0, explanation=EXPLANATION)
    rows = [total, row("fraud_rate", {"country": "BR"}, T0, parent=total["incident_id"]),
            row("order_count", {}, T0 - dt.timedelta(days=20), end=T0 - dt.timedelta(days=15))]
    store = Store(config.store_path)
    with store.connect() as con:
        for r in rows:
            con.execute(f"INSERT INTO incidents ({', '.join(r)}) VALUES ({', '.join('?' * len(r))})", list(r.values()))
    return config


def test_list_decodes_json_and_filters(config):
    rows = list_incidents(config)
    assert [r.metric for r in rows] == ["fraud_rate", "fraud_rate", "order_count"]  # newest first
    assert rows[1].segment == {"country": "BR"} and rows[0].why.params == {"detector": "default"}
    assert rows[0].explanation.to_dict() == EXPLANATION and rows[1].explanation is None
    plain = rows[0].to_json()  # what `--format json` prints
    assert "slice_json" not in plain and plain["explanation"] == EXPLANATION and plain["why"] == {"detector": "default"}
    assert isinstance(rows[0].start_ts, dt.datetime)
    assert rows[2].end_ts == T0 - dt.timedelta(days=15) and rows[0].end_ts is None
    assert [r.metric for r in list_incidents(config, metrics=["order_count"])] == ["order_count"]
    assert {r.status for r in list_incidents(config, status="open")} == {"open"}
    assert [r.slice for r in list_incidents(config, slices=False)] == ["", ""]
    assert [r.metric for r in list_incidents(config, since=f"{T0 - dt.timedelta(days=10):%Y-%m-%d}")] == [
        "fraud_rate", "fraud_rate"]


def test_get_by_prefix_and_its_errors(config):
    total = list_incidents(config)[0]
    assert get_incident(config, total.incident_id[:6]).incident_id == total.incident_id
    with pytest.raises(MonitorError, match="No incident 'nope'"):
        get_incident(config, "nope")
    with pytest.raises(MonitorError, match="matches 3 incidents"):
        get_incident(config, "")


def test_table_has_a_row_per_incident_and_the_top_segment(config):
    rows = list_incidents(config)
    lines = render_table(rows, {"fraud_rate": "ratio", "order_count": "sum"}).splitlines()
    assert lines[0].split() == ["id", "metric", "slice", "start", "end", "dir", "baseline", "observed", "change",
                                "status", "top", "segment"]
    assert len(lines) == 4
    assert rows[0].incident_id in lines[1] and "  total  " in lines[1]
    assert "country=BR · payment_method=card" in lines[1] and f"({format_share(TOP['explained_share'])})" in lines[1]
    assert f" {format_relative(1.0)} " in lines[1] == lines[1].replace("+100.0%", "") and "open" in lines[1]
    assert "1.00%" in lines[1] and "2.00%" in lines[1]  # a ratio's values as rates
    assert "resolved (recovered)" in lines[3]
    assert render_table([]) == "No incidents."


def test_explanation_text_with_and_without_attribution(config):
    total, slice_ = list_incidents(config)[:2]
    text = render_explanation(total, {"fraud_rate": "ratio"}).splitlines()
    assert text[0] == f"fraud_rate total: up {format_relative(1.0)} since {T0:%Y-%m-%d %H:%M} [open]"
    assert text[1] == "  baseline 1.00% -> observed 2.00%, score 7.2, detector default"
    assert render_explanation(total).splitlines()[1].startswith("  baseline 0.01 -> observed 0.02,")  # kind unknown
    assert "  root-cause segments:" in text and any("payment_method=card" in line for line in text[2:])
    assert render_explanation(slice_).splitlines()[-1] == "  (no attribution stored yet: run `monitor detect`)"
