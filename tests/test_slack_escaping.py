"""Nothing from the data can ping a channel, plant a link or restyle a Slack message.

Messages go through the real delivery path to the local Slack stand-in
(tests/slack_server.py), and every text field of each delivered payload is walked.
"""
from __future__ import annotations

import datetime as dt
import doctest
import json
import re

import duckdb
import pytest
from alert_fixtures import EXPLANATION, HEADERS, T0, add_incident, config, make_store
from hypothesis import given, settings
from hypothesis import strategies as st
from slack_server import serving

import monitor.alert.mrkdwn
from monitor.alert import run_alert_cycle, send_message
from monitor.alert.mrkdwn import code, literal
from monitor.catalog import load_catalog
from monitor.detect.incident_rows import detected_row as incident_row
from monitor.report import generate_report
from monitor.report.deliver import digest_message
from monitor.slices import slice_label
from tests.report_fixtures import D, build_project

HOSTILE = "<!channel> <http://evil.example|click> *bold* _it_ ~gone~ `tick` &amp; R&D"
ENV = "SLACK_WEBHOOK_TEST"
# A link we built: <http(s)://url|label>, the url without spaces, angle brackets or a second bar.
OUR_LINK = re.compile(r"<https?://[^\s<>|]+\|[^<>|]*>")
OUR_BASES = ("<http://dash.local:8501/", "<https://wiki.example.com/", "<https://reports.example.com/")
ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")


@pytest.fixture
def slack(monkeypatch):
    yield from serving(monkeypatch, ENV)


def texts(node, path="payload", kind="mrkdwn"):
    """(path, kind, text) of every field Slack renders: top-level text, text objects, context elements."""
    if isinstance(node, dict):
        kind = node.get("type", kind) if node.get("type") in ("plain_text", "mrkdwn") else kind
        for key, value in node.items():
            if key == "text" and isinstance(value, str):
                yield f"{path}.text", kind, value
            else:
                yield from texts(value, f"{path}.{key}", kind)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from texts(value, f"{path}[{i}]", kind)


def assert_inert(payload: dict) -> list[str]:
    """Every rendered text escaped; outside code spans no hostile marker formats. Returns the texts."""
    found = list(texts(payload))
    assert found and found[0][0] == "payload.text"
    for where, kind, text in found:
        # A link's URL is not shown; its label and the rest are, except inside code spans.
        shown = OUR_LINK.sub(lambda m: m.group()[:-1].split("|", 1)[1], text)
        assert "<" not in shown and ">" not in shown, (where, text)
        assert not ENTITY.search(shown), (where, text)
        assert all(link.startswith(OUR_BASES) for link in OUR_LINK.findall(text)), (where, text)
        if kind == "mrkdwn":  # plain_text (headers) shows markers as they are
            outside = re.sub(r"`[^`]*`", "", shown)
            for marker in ("*bold*", "_it_", "~gone~", "`tick`"):
                assert marker not in outside, (where, marker, text)
    return [t for _, _, t in found]


def slack_config():
    return config([{"name": "risk-slack", "type": "slack", "webhook_url_env": ENV}], timeout="2s")


def test_alert_with_hostile_values_is_delivered_inert(tmp_path, slack):
    store = make_store(tmp_path)
    header = {**HEADERS["fraud_rate"], "title": "Fraud *rate* <!here>", "owner": "<@U123> _team_"}
    with store.connect() as con:
        con.execute("UPDATE metric_definitions SET header_json = ? WHERE metric = 'fraud_rate'", [json.dumps(header)])
    explanation = {**EXPLANATION, "baseline_label": "last *week* <!channel>",
                   "causes": [{**EXPLANATION["causes"][0], "segment": {"channel": HOSTILE}}]}
    total = add_incident(store, explanation=explanation, baseline=0.010, observed=0.020)
    add_incident(store, segment={"country": HOSTILE}, parent=total, baseline=0.01, observed=0.05)
    add_incident(store, "signup_count", {"country": HOSTILE}, baseline=100, observed=300)
    result = run_alert_cycle(store, slack_config(), now=T0)
    assert result.problems == [] and len(slack.requests) >= 1
    seen = "\n".join(t for request in slack.requests for t in assert_inert(request.json))
    # Still readable: the value is there, escaped, in a code span where it is a slice.
    label = slice_label({"country": HOSTILE})
    assert code(label) in seen and code(slice_label({"channel": HOSTILE})) in seen
    assert any(literal(label) in request.json["text"] for request in slack.requests)
    assert "Fraud ∗rate∗ &lt;!here&gt;" in seen and "&lt;@U123&gt; ˍteamˍ" in seen


def test_digest_with_hostile_slices_is_delivered_inert(tmp_path, slack):
    project = build_project(tmp_path / "p")
    fraud = load_catalog(project.metrics_dir).metrics["fraud_rate"]
    start = dt.datetime.combine(D, dt.time())
    row = incident_row(fraud, {"country": HOSTILE}, start=start, end=None, last_ts=start, direction="up",
                       kind="level_shift", baseline=0.04, observed=0.06, relative_change=0.5, score=99.0,
                       resolution=None, why={})
    row.update(created_at=start, updated_at=start, severity="critical")
    with duckdb.connect(str(project.store_path)) as con:
        con.execute(f"INSERT INTO incidents ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
    report = generate_report(project, date=D, out_dir=tmp_path / "out")
    message = digest_message(report)
    assert HOSTILE.split()[0] in message["text"]  # the hostile slice made it into the digest
    result = send_message(slack_config(), message, receivers="risk-slack", now=T0, store=make_store(tmp_path))
    assert result.sent == ["risk-slack"]
    [request] = slack.requests
    assert any(code(row["slice"]) in t for t in assert_inert(request.json))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(list("<>&|*_~`!@ ax:/.;é") + ["<!channel>", "&amp;", "http://"]),
                max_size=40).map("".join))
def test_literal_and_code_never_leave_a_live_construct(value):
    for text in (literal(value), code(value)):
        assert "<" not in text and ">" not in text and not ENTITY.search(text)
    assert code(value).count("`") == 2
    outside = literal(value)
    assert not re.search(r"(?<![^\W_])[*_~]|[*_~](?![^\W_])|`", outside)


def test_doctests():
    result = doctest.testmod(monitor.alert.mrkdwn)
    assert result.attempted > 0 and result.failed == 0
