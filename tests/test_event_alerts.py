"""Linked events in alerts: the Slack message (a real local Slack server) and the webhook payload say
"3 h after rule R-142 ... on payment_method=card"; an expected event keeps its incident from paging
only inside its window and scope, while the incident stays recorded and marked."""
from __future__ import annotations

import datetime as dt

import pytest
from alert_fixtures import EXPLANATION, T0, add_incident, config, make_store
from slack_server import serving

from monitor.alert import run_alert_cycle
from monitor.alert.blocks import validate_blocks
from monitor.config import load_config
from monitor.events.cycle import link_project_events
from monitor.events.store import add_event

ENV = "SLACK_WEBHOOK_EVENTS"
START = T0 - dt.timedelta(days=2)  # the incidents' start (fraud_rate: day grain)


@pytest.fixture
def slack(monkeypatch):
    yield from serving(monkeypatch, ENV)


@pytest.fixture
def project(tmp_path):
    (tmp_path / "monitor.toml").write_text('[project]\nstore = "store.duckdb"\n[events]\nwindow = "1d"\n')
    store = make_store(tmp_path)
    return load_config(tmp_path / "monitor.toml"), store


def slack_config():
    return config([{"name": "risk-slack", "type": "slack", "webhook_url_env": ENV}], timeout="2s", group_wait="0s")


def texts(blocks) -> str:
    out = []
    for block in blocks:
        if "text" in block:
            out.append(block["text"]["text"])
        out += [e["text"] for e in block.get("elements", []) if "text" in e]
    return "\n".join(out)


def test_slack_alert_shows_the_linked_rule_change(project, slack):
    cfg, store = project
    add_incident(store, "fraud_rate", {"country": "BR"})
    add_event(store, kind="rule", title="R-142 tighten BIN velocity", at=START - dt.timedelta(hours=3),
              scope={"country": "BR"}, url="https://rules.example.com/R-142", now=T0)
    add_event(store, kind="rule", title="R-7 elsewhere", at=START - dt.timedelta(hours=1),
              scope={"country": "US"}, now=T0)
    assert link_project_events(cfg, store, now=T0).links == 1
    run_alert_cycle(store, slack_config(), now=T0)
    [request] = slack.requests
    body = request.json
    assert validate_blocks(body["blocks"]) == []
    shown = texts(body["blocks"])
    assert "*Our changes before it:* <https://rules.example.com/R-142|3 h after rule 'R-142 tighten BIN velocity' " \
           "on country=BR>" in shown
    assert "R-7" not in shown


def test_webhook_payload_carries_the_link(project, slack, monkeypatch):
    cfg, store = project
    monkeypatch.setenv("HOOK_URL", slack.url)
    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    add_incident(store, "fraud_rate", {}, explanation=EXPLANATION)  # top cause: country=BR
    add_event(store, kind="model", title="fraud model v13", at=START - dt.timedelta(minutes=30),
              scope={"country": "BR"}, now=T0)
    link_project_events(cfg, store, now=T0)
    run_alert_cycle(store, config([{"name": "hook", "type": "webhook", "url_env": "HOOK_URL",
                                                  "secret_env": "HOOK_SECRET"}], group_wait="0s"),
                    now=T0)
    [request] = slack.requests
    [alert] = request.json["alerts"]
    [event] = alert["events"]
    assert (event["kind"], event["title"], event["scope"], event["lag_seconds"], event["expected"]) == (
        "model", "fraud model v13", {"country": "BR"}, 1800.0, False)
    assert event["text"] == "30 min after model 'fraud model v13' on country=BR"


def promotion(store, **kw):
    return add_event(store, kind="promotion", title="Summer sale", at=START - dt.timedelta(days=1),
                     until=START + dt.timedelta(days=3), metrics=["fraud_rate"], expected=True, now=T0, **kw)


@pytest.mark.parametrize("segment,scope,start,pages", [
    ({}, {}, START, False),                                          # inside window and scope: quiet
    ({"country": "BR"}, {"country": "BR"}, START, False),            # scoped, in scope
    ({"country": "US"}, {"country": "BR"}, START, True),             # out of scope
    ({}, {}, START - dt.timedelta(days=2), True),                    # started before the window
])
def test_an_expected_event_keeps_only_its_window_and_scope_from_paging(project, segment, scope, start, pages):
    cfg, store = project
    from alert_fixtures import Recorder

    incident = add_incident(store, "fraud_rate", segment, start=start)
    promotion(store, scope=scope)
    link_project_events(cfg, store, now=T0)
    recorder = Recorder("ops")
    result = run_alert_cycle(store, config(group_wait="0s"), now=T0, notifiers={"ops": recorder})
    sent = recorder.take()
    assert bool(sent) is pages
    assert result.incidents == 1  # still recorded and open either way
    with store.connect(read_only=True) as con:
        assert con.execute("SELECT status FROM incidents WHERE incident_id = ?",
                           [incident["incident_id"]]).fetchone() == ("open",)


def test_an_expected_incident_still_open_after_the_window_pages_then(project):
    cfg, store = project
    from alert_fixtures import Recorder

    add_incident(store, "fraud_rate", {}, start=START)
    event = promotion(store)
    link_project_events(cfg, store, now=T0)
    recorder = Recorder("ops")
    run_alert_cycle(store, config(group_wait="0s"), now=T0, notifiers={"ops": recorder})
    assert recorder.take() == []
    later = event.end_ts + dt.timedelta(days=1)  # [events] expected_grace defaults to 1d
    run_alert_cycle(store, config(group_wait="0s"), now=later, notifiers={"ops": recorder})
    [message] = recorder.take()
    assert message["alerts"][0]["quiet"] is None


def test_a_broken_events_section_does_not_stop_alerts(tmp_path):
    from alert_fixtures import Recorder

    (tmp_path / "monitor.toml").write_text('[project]\nstore = "store.duckdb"\n[events]\nwindow = "1d"\n')
    store = make_store(tmp_path)
    add_incident(store, "fraud_rate", {})
    promotion(store)
    link_project_events(load_config(tmp_path / "monitor.toml"), store, now=T0)
    (tmp_path / "monitor.toml").write_text('[project]\nstore = "store.duckdb"\n[events]\nwindow = "soon"\n')
    broken = load_config(tmp_path / "monitor.toml")
    from monitor.events.attach import attach_events

    from monitor.incident import read_incidents

    with store.connect() as con:
        incidents = attach_events(con, broken, read_incidents(con), now=T0)
    assert incidents[0].expected_by.startswith("expected: promotion 'Summer sale'")
