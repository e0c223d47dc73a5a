"""One contract test runs every registered notifier: a new type is tested the day it lands.

For each type, ``TARGETS`` knows how to give it a working local target (a fake
Slack endpoint, a signed-webhook receiver, a file, the console) and how to read
back what arrived. A registered type without an entry here fails the test.
"""
from __future__ import annotations

import datetime as dt

import pytest
from alert_fixtures import T0
from slack_server import FakeEndpoint

from monitor.alert.config import ReceiverConfig
from monitor.alert.notifiers import FAILED, RETRY, SENT, make_notifier, notifier_class, notifier_types
from monitor.settings import Setting

MESSAGE = {
    "schema": "monitor.alert/v1", "message_id": "m-1", "receiver": "r", "group_key": "route:{}",
    "group_labels": {"metric": "fraud_rate"}, "status": "firing", "reason": "new", "created_at": T0.isoformat(),
    "firing": 1, "resolved": 0, "dashboard_url": None,
    "summary": "[FIRING] Confirmed fraud rate up +41.7% (total)",
    "alerts": [{"fingerprint": "f", "incident_id": "i", "status": "firing", "resolution": None,
                "metric": "fraud_rate", "title": "Confirmed fraud rate", "slice": "", "segment": {},
                "direction": "up", "kind": "level_shift", "severity": "high",
                "start_ts": (T0 - dt.timedelta(days=1)).isoformat(), "end_ts": None, "last_ts": T0.isoformat(),
                "baseline": 0.012, "observed": 0.017, "relative_change": 0.417, "score": 5.0,
                "metric_kind": "ratio", "unit": "percent", "grain": "day", "owner": "risk-oncall", "team": None,
                "runbook": None, "labels": {}, "links": {}, "explanation": None, "quiet": None, "children": []}],
}


class SlackTarget:
    options = {"webhook_url_env": "CONTRACT_URL"}

    def __init__(self, tmp_path, capsys):
        self.endpoint = FakeEndpoint().start()
        self.env = {"CONTRACT_URL": self.endpoint.url}

    def received(self) -> str:
        return "\n".join(r.raw.decode() for r in self.endpoint.accepted())

    def touched(self) -> bool:
        """Any I/O reached the target (a request, accepted or not)."""
        return bool(self.endpoint.requests)

    def break_(self):
        self.endpoint.stop()

    def close(self):
        self.endpoint.stop()


class WebhookTarget(SlackTarget):
    options = {"url_env": "CONTRACT_URL", "secret_env": "CONTRACT_SECRET"}

    def __init__(self, tmp_path, capsys):
        self.endpoint = FakeEndpoint(secret="k").start()
        self.env = {"CONTRACT_URL": self.endpoint.url, "CONTRACT_SECRET": "k"}


class ConsoleTarget:
    options: dict = {}
    env: dict = {}

    def __init__(self, tmp_path, capsys):
        self.capsys = capsys

    def received(self) -> str:
        return self.capsys.readouterr().out

    def touched(self) -> bool:
        captured = self.capsys.readouterr()
        return bool(captured.out or captured.err)

    def break_(self):
        return None  # a terminal cannot be unreachable

    def close(self):
        pass


class FileTarget(ConsoleTarget):
    def __init__(self, tmp_path, capsys):
        self.path = tmp_path / "out" / "alerts.log"
        self.options = {"path": str(self.path)}
        self.tmp_path = tmp_path

    def received(self) -> str:
        return self.path.read_text() if self.path.exists() else ""

    def touched(self) -> bool:
        return self.path.parent.exists()

    def break_(self):
        self.path.mkdir(parents=True)  # a directory where the file should be: the write fails


TARGETS = {"slack": SlackTarget, "webhook": WebhookTarget, "console": ConsoleTarget, "file": FileTarget}


@pytest.fixture(params=notifier_types())
def target(request, tmp_path, capsys):
    kind = request.param
    assert kind in TARGETS, f"notifier type {kind!r} has no contract target; add one to TARGETS"
    made = TARGETS[kind](tmp_path, capsys)
    yield kind, made
    made.close()


def receiver_config(kind: str, options: dict) -> ReceiverConfig:
    cls = notifier_class(kind)
    full = {o.name: o.default for o in cls.OPTIONS if o.default is not None}
    full.update(options)
    return ReceiverConfig(name=f"contract-{kind}", type=kind, send_resolved=True, options=full,
                          timeout=dt.timedelta(seconds=2))


def test_options_are_declared_settings_with_help(target):
    kind, _ = target
    for option in notifier_class(kind).OPTIONS:
        assert isinstance(option, Setting) and option.help.strip()
        if option.kind == "env":
            assert option.name.endswith("_env")  # secrets are only ever named, never written


def test_delivers_the_message_content(target):
    kind, made = target
    notifier = make_notifier(receiver_config(kind, made.options), env=made.env)
    delivery = notifier.send(MESSAGE, idempotency_key="m-1", now=T0)
    assert delivery.outcome == SENT, delivery
    assert "Confirmed fraud rate" in made.received()


def test_unreachable_target_is_a_retry_not_an_exception(target):
    kind, made = target
    if made.break_() is None and kind == "console":
        pytest.skip("the console is always reachable")
    notifier = make_notifier(receiver_config(kind, made.options), env=made.env)
    delivery = notifier.send(MESSAGE, idempotency_key="m-1", now=T0)
    assert delivery.outcome == RETRY and delivery.error


def test_constructing_does_no_io(target):
    kind, made = target
    assert not made.touched()
    make_notifier(receiver_config(kind, made.options), env=made.env)
    assert not made.touched()
    # the probe sees I/O when there is some: sending does reach the target
    make_notifier(receiver_config(kind, made.options), env=made.env).send(MESSAGE, idempotency_key="m-1", now=T0)
    assert made.touched()


def test_a_missing_secret_is_a_retry_without_io(target):
    kind, made = target
    env_options = [o.name for o in notifier_class(kind).OPTIONS if o.kind == "env"]
    if not env_options:
        pytest.skip(f"{kind} reads no secret from the environment")
    notifier = make_notifier(receiver_config(kind, made.options), env={})  # no variables at all
    delivery = notifier.send(MESSAGE, idempotency_key="m-1", now=T0)
    assert delivery.outcome == RETRY and "not set" in delivery.error
    assert delivery.outcome not in (SENT, FAILED)
    assert not made.touched()
