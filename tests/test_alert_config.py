"""[alerts] validation (every problem, by key, no secrets echoed) and routing on labels."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from monitor.alert.config import (RECEIVER_SETTINGS, ROUTE_SETTINGS, SETTINGS, AlertConfigError, load_alert_config,
                                  parse_alert_config, parse_duration)
from monitor.alert.notifiers import notifier_class, notifier_types
from monitor.alert.routing import group_key, incident_labels, match_routes
from monitor.incident import Incident
from monitor.config import load_config
from monitor.errors import ConfigError

DOCS = Path(__file__).resolve().parents[1] / "docs" / "alerts.md"
SLACK = {"name": "risk-slack", "type": "slack", "webhook_url_env": "SLACK_WEBHOOK_RISK"}
CONSOLE = {"name": "console", "type": "console"}


def problems(section) -> list[str]:
    with pytest.raises(AlertConfigError) as info:
        parse_alert_config(section)
    return info.value.problems


def test_every_problem_is_reported_at_once_naming_its_key():
    found = problems({
        "group_wait": "soon",
        "repeat_interval": "4h",
        "colour": "red",
        "receivers": [{"name": "a", "type": "slak"}, {"type": "console"}, {"name": "a", "type": "console"},
                      {"name": "hook", "type": "webhook", "url_env": "HOOK_URL"}],
        "route": {"receiver": "nobody", "routes": [{"match_re": {"severity": "(("}, "receiver": "a"},
                                                   {"matchers": ["country"], "continue": "yes"}]},
    })
    expected = [
        "alerts.group_wait must be a duration",
        "alerts: unknown key 'colour'",
        "alerts.receivers[0] (a).type: unknown notifier type 'slak'; valid types are ['console', 'file', 'slack', 'webhook']",
        "alerts.receivers[1].name: required",
        "alerts.receivers[2] (a).name: duplicate receiver name 'a'",
        "alerts.receivers[3] (hook).secret_env: required",
        "alerts.route.receiver: unknown receiver 'nobody'",
        "alerts.route.routes[0].match_re.severity: invalid regular expression",
        "alerts.route.routes[1].continue must be true or false",
        "alerts.route.routes[1].matchers[0]: Matcher 'country' has no operator",
    ]
    for text in expected:
        assert any(p.startswith(text) for p in found), (text, found)
    assert len(found) == len(expected)


def test_unknown_notifier_type_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"valid notifier types are: console, file, slack, webhook"):
        notifier_class("pagerduty")


def test_secrets_in_the_config_are_refused_without_echoing_them():
    url = "https://hooks.slack.com/services/T1/B2/very-secret"
    found = problems({"receivers": [{"name": "s", "type": "slack", "webhook_url": url},
                                    {"name": "t", "type": "slack", "webhook_url_env": url}]})
    text = "\n".join(found)
    assert url not in text and "very-secret" not in text
    assert "secrets never go in monitor.toml" in text and "webhook_url_env" in text
    assert "must be the *name* of an environment variable" in text


def test_defaults_and_inheritance_down_the_route_tree():
    cfg = parse_alert_config({
        "group_interval": "10m",
        "receivers": [SLACK, CONSOLE],
        "route": {"receiver": "console", "repeat_interval": "12h",
                  "routes": [{"match": {"team": "payments"}, "receiver": "risk-slack", "group_wait": "30s",
                              "routes": [{"match": {"severity": "critical"}, "group_by": "..."}]}]},
    })
    root = cfg.route
    child = root.routes[0]
    grandchild = child.routes[0]
    assert (root.group_wait, root.group_interval, root.repeat_interval) == (
        dt.timedelta(0), dt.timedelta(minutes=10), dt.timedelta(hours=12))
    assert (child.receiver, child.group_wait, child.repeat_interval) == ("risk-slack", dt.timedelta(seconds=30),
                                                                           dt.timedelta(hours=12))
    assert (grandchild.receiver, grandchild.group_by, grandchild.group_wait) == ("risk-slack", None,
                                                                                  dt.timedelta(seconds=30))
    assert root.group_by == ("metric",) and cfg.receivers["risk-slack"].send_resolved is True


def test_one_receiver_needs_no_route_but_two_do():
    assert parse_alert_config({"receivers": [CONSOLE]}).route.receiver == "console"
    assert any("alerts.route: required" in p for p in problems({"receivers": [CONSOLE, SLACK]}))
    assert not parse_alert_config({}).active


@pytest.mark.parametrize("text,seconds", [("30s", 30), ("5m", 300), ("1h30m", 5400), ("2d", 172800),
                                          ("0.5s", 0.5), (90, 90)])
def test_durations(text, seconds):
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("bad", ["", "5", "5 parsecs", "-1m", True, -3])
def test_bad_durations(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_loaded_from_monitor_toml_with_dashboard_url(tmp_path):
    (tmp_path / "monitor.toml").write_text(
        '[dashboard]\nurl = "http://dash.local:8501/"\n'
        '[alerts]\ngroup_by = ["metric", "country"]\n'
        '[[alerts.receivers]]\nname = "console"\ntype = "console"\n'
        '[[alerts.receivers]]\nname = "log"\ntype = "file"\npath = "alerts.log"\nformat = "jsonl"\n'
        '[alerts.route]\nreceiver = "console"\n'
        '[[alerts.route.routes]]\nmatch = {scope = "total"}\nreceiver = "log"\ncontinue = true\n')
    cfg = load_alert_config(load_config(tmp_path / "monitor.toml"))
    assert cfg.dashboard_url == "http://dash.local:8501" and cfg.receivers["log"].root == tmp_path
    assert cfg.route.routes[0].continue_ and cfg.route.group_by == ("metric", "country")


def test_every_setting_and_notifier_option_is_documented():
    docs = DOCS.read_text()
    names = [s.name for s in (*SETTINGS, *RECEIVER_SETTINGS, *ROUTE_SETTINGS)]
    names += [o.name for t in notifier_types() for o in notifier_class(t).OPTIONS]
    missing = [n for n in names if f"`{n}`" not in docs]
    assert missing == []
    assert all(f"`{t}`" in docs for t in notifier_types())


# -- routing ------------------------------------------------------------------------------------
HEADER = {"title": "Fraud", "owner": "risk-oncall", "team": "payments", "severity": "high", "grain": "day",
          "labels": {"domain": "fraud", "team": "spoofed"}}
BR = {"metric": "fraud_rate", "slice": "country=BR", "slice_json": '{"country": "BR", "metric": "x"}',
      "severity": "critical", "direction": "up", "kind": "spike"}


def test_labels_combine_builtins_slice_dimensions_and_header_labels():
    labels = incident_labels(Incident.from_row(BR), HEADER)
    assert labels == {"domain": "fraud", "team": "payments", "country": "BR", "metric": "fraud_rate",
                      "slice": "country=BR", "scope": "slice", "owner": "risk-oncall", "severity": "critical",
                      "direction": "up", "incident_kind": "spike", "grain": "day"}


def routes_config():
    return parse_alert_config({
        "receivers": [CONSOLE, SLACK, {"name": "brazil", "type": "console"}, {"name": "pager", "type": "console"}],
        "route": {"receiver": "console", "routes": [
            {"match_re": {"severity": "high|critical"}, "receiver": "pager", "continue": True},
            {"match": {"team": "payments"}, "receiver": "risk-slack",
             "routes": [{"matchers": ["country=~BR|AR"], "receiver": "brazil"}]},
            {"match": {"domain": "fraud"}, "receiver": "console"},
        ]},
    })


@pytest.mark.parametrize("labels,receivers", [
    ({"team": "payments", "severity": "critical", "country": "BR"}, ["pager", "brazil"]),
    ({"team": "payments", "severity": "low", "country": "US"}, ["risk-slack"]),
    ({"team": "identity", "severity": "high"}, ["pager"]),  # a continue-match still counts as handled
    ({"team": "identity", "severity": "low", "domain": "fraud"}, ["console"]),
    ({"team": "identity", "severity": "very-high"}, ["console"]),  # regexes are anchored
])
def test_routing_tree_first_match_with_continue(labels, receivers):
    assert [r.receiver for r in match_routes(routes_config().route, labels)] == receivers


def test_group_key_depends_on_route_and_group_by_labels_only():
    cfg = routes_config()
    route = cfg.route
    a = group_key(route, {"metric": "fraud_rate", "country": "BR"})
    assert a == group_key(route, {"metric": "fraud_rate", "country": "MX"})
    assert a != group_key(route, {"metric": "chargeback_rate"})
    assert a != group_key(route.routes[1], {"metric": "fraud_rate"})


def test_continue_on_the_root_route_also_sends_everything_to_its_receiver():
    from monitor.alert.routing import route_alert

    cfg = parse_alert_config({  # the shape `monitor demo` writes: console gets all, alerts.log too
        "receivers": [CONSOLE, {"name": "file", "type": "file", "path": "alerts.log"}, SLACK],
        "route": {"receiver": "console", "continue": True, "routes": [
            {"receiver": "file", "match": {}},
            {"receiver": "risk-slack", "match": {"team": "payments"}}]},
    })
    assert [r.receiver for r in route_alert(cfg.route, {"team": "payments"})] == ["console", "file"]
    plain = parse_alert_config({"receivers": [CONSOLE, SLACK], "route": {
        "receiver": "console", "routes": [{"receiver": "risk-slack", "match": {"team": "payments"}}]}})
    assert [r.receiver for r in route_alert(plain.route, {"team": "payments"})] == ["risk-slack"]
    assert [r.receiver for r in route_alert(plain.route, {"team": "growth"})] == ["console"]


def test_the_root_route_cannot_filter():
    assert any("the root route matches every alert" in p for p in problems(
        {"receivers": [CONSOLE], "route": {"receiver": "console", "match": {"team": "x"}}}))
