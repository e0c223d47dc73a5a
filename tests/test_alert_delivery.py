"""Delivery through a real local HTTP server that answers like Slack's incoming webhook.

Each answer Slack can give maps to an outbox state: 200 ok -> sent; 400
invalid_blocks -> failed (kept, reported, not retried); 429 -> retried after
Retry-After; 500, connection refused, timeout -> retried with backoff.
"""
from __future__ import annotations

import datetime as dt
import logging

import pytest
from alert_fixtures import T0, add_incident, config, make_store, resolve
from slack_server import INVALID_BLOCKS, SERVER_ERROR, SLACK_PATH, rate_limited, serving, slow

from monitor.alert import flush_outbox, outbox_entries, outbox_payload, run_alert_cycle
from monitor.alert.blocks import render_blocks, validate_blocks

SEC = dt.timedelta(seconds=1)
MIN = dt.timedelta(minutes=1)
ENV = "SLACK_WEBHOOK_TEST"


@pytest.fixture
def slack(monkeypatch):
    yield from serving(monkeypatch, ENV)


@pytest.fixture
def store(tmp_path):
    return make_store(tmp_path)


def slack_config(**settings):
    settings.setdefault("timeout", "2s")
    return config([{"name": "risk-slack", "type": "slack", "webhook_url_env": ENV}], **settings)


def test_ok_delivers_valid_block_kit_once(store, slack):
    add_incident(store)
    result = run_alert_cycle(store, slack_config(), now=T0)
    [request] = slack.requests
    assert request.path == SLACK_PATH
    body = request.json
    assert validate_blocks(body["blocks"]) == [] and body["text"].startswith("[FIRING]")
    assert len(result.flush.sent) == 1 and result.problems == []
    [entry] = outbox_entries(store)
    assert (entry.status, entry.attempts, entry.last_status_code) == ("sent", 1, 200)
    flush_outbox(store, slack_config(), now=T0 + MIN)
    assert len(slack.requests) == 1


def test_invalid_blocks_is_permanent_reported_and_does_not_block_later_messages(store, slack):
    add_incident(store)
    slack.reply(INVALID_BLOCKS)
    result = run_alert_cycle(store, slack_config(), now=T0)
    assert [e.status for e in result.flush.failed] == ["failed"]
    assert "invalid_blocks" in result.flush.failed[0].last_error and "invalid_blocks" in result.problems[0]
    # a new incident on another metric still goes out even though the earlier message failed for good
    add_incident(store, "signup_count", {"country": "US"}, baseline=100, observed=200)
    later = run_alert_cycle(store, slack_config(), now=T0 + 10 * MIN)
    assert len(later.flush.sent) == 1
    assert len(slack.requests) == 2  # the failed one was not retried
    assert [e.status for e in outbox_entries(store, status="failed")] == ["failed"]


def test_429_waits_for_retry_after_then_sends(store, slack):
    add_incident(store)
    slack.reply(rate_limited(7))
    result = run_alert_cycle(store, slack_config(), now=T0)
    [entry] = result.flush.retrying
    assert entry.next_attempt_at == T0 + 7 * SEC and entry.last_status_code == 429
    assert flush_outbox(store, slack_config(), now=T0 + 5 * SEC).held == 1
    assert len(slack.requests) == 1
    assert len(flush_outbox(store, slack_config(), now=T0 + 7 * SEC).sent) == 1
    [entry] = outbox_entries(store)
    assert (entry.status, entry.attempts) == ("sent", 2)


def test_5xx_retries_with_exponential_backoff(store, slack):
    add_incident(store)
    slack.reply(SERVER_ERROR, SERVER_ERROR, SERVER_ERROR)
    cfg = slack_config(retry_initial="30s", retry_max="100s")
    now = T0
    waits = []
    run_alert_cycle(store, cfg, now=now)
    for _ in range(3):
        [entry] = outbox_entries(store)
        waits.append((entry.next_attempt_at - now).total_seconds())
        now = entry.next_attempt_at
        flush_outbox(store, cfg, now=now)
    assert waits == [30, 60, 100]  # doubling, capped at retry_max
    [entry] = outbox_entries(store)
    assert (entry.status, entry.attempts) == ("sent", 4)


def test_connection_refused_is_retried_and_never_shows_the_url(store, slack, caplog):
    caplog.set_level(logging.DEBUG)
    slack.stop()
    add_incident(store)
    result = run_alert_cycle(store, slack_config(), now=T0)
    [entry] = result.flush.retrying
    assert "connection refused" in entry.last_error
    slack.start()
    assert len(flush_outbox(store, slack_config(), now=T0 + MIN).sent) == 1
    with store.connect() as con:
        stored = str(con.execute("SELECT * FROM alert_outbox").fetchall())
        stored += str(con.execute("SELECT * FROM alert_attempts").fetchall())
    secret = SLACK_PATH.rsplit("/", 1)[1]
    assert secret not in caplog.text and secret not in stored and secret not in str(result.problems)
    assert slack.url not in caplog.text


def test_slow_endpoint_times_out_and_is_retried(store, slack):
    add_incident(store)
    slack.reply(slow(1.0))
    result = run_alert_cycle(store, slack_config(timeout="0.2s"), now=T0)
    [entry] = result.flush.retrying
    assert "timed out" in entry.last_error


def test_missing_environment_variable_waits_in_the_outbox(store, monkeypatch, slack):
    monkeypatch.delenv(ENV)
    add_incident(store)
    result = run_alert_cycle(store, slack_config(), now=T0)
    [entry] = result.flush.retrying
    assert ENV in entry.last_error and "not set" in entry.last_error
    monkeypatch.setenv(ENV, slack.url)
    assert len(flush_outbox(store, slack_config(), now=T0 + MIN).sent) == 1


def test_a_later_message_never_overtakes_an_earlier_failed_one(store, slack):
    incident = add_incident(store)
    slack.reply(SERVER_ERROR)
    run_alert_cycle(store, slack_config(retry_initial="1h"), now=T0)
    resolve(store, incident, at=T0 + 10 * MIN)
    result = run_alert_cycle(store, slack_config(retry_initial="1h"), now=T0 + 10 * MIN)
    assert [q.reason for q in result.queued] == ["resolved"]
    assert result.flush.held == 2 and len(slack.requests) == 1  # the resolved notice waits behind the alert
    run_alert_cycle(store, slack_config(retry_initial="1h"), now=T0 + 70 * MIN)
    assert [r.json["text"][:10] for r in slack.accepted()] == ["[FIRING] C", "[RESOLVED]"]


def test_chaos_endpoint_down_for_several_cycles_then_every_alert_arrives_once_in_order(store, slack):
    cfg = slack_config(retry_initial="5m", retry_max="20m", repeat_interval="20m", group_interval="5m")
    slack.stop()  # down: connection refused
    br = add_incident(store, segment={"country": "BR"})
    run_alert_cycle(store, cfg, now=T0)  # 1: fraud_rate, BR firing
    add_incident(store, "signup_count", {"country": "US"}, baseline=100, observed=300)
    add_incident(store, segment={"country": "MX"})
    run_alert_cycle(store, cfg, now=T0 + 10 * MIN)  # 2: fraud_rate update, MX joins; 3: signup firing
    resolve(store, br, at=T0 + 20 * MIN)
    run_alert_cycle(store, cfg, now=T0 + 20 * MIN)  # 4: fraud_rate update, BR resolved
    run_alert_cycle(store, cfg, now=T0 + 35 * MIN)  # repeats would be due, but nothing was delivered yet
    entries = sorted(outbox_entries(store), key=lambda e: e.seq)
    assert [e.reason for e in entries] == ["new", "update", "new", "update"]
    assert {e.status for e in entries} == {"pending"} and entries[0].attempts == 3

    slack.start()
    slack.reply(SERVER_ERROR)  # it comes back flaky
    first = run_alert_cycle(store, cfg, now=T0 + 60 * MIN)
    assert first.flush.sent == [] and first.flush.held == 3  # the head failed: nothing overtakes it
    run_alert_cycle(store, cfg, now=T0 + 80 * MIN)

    entries = sorted(outbox_entries(store), key=lambda e: e.seq)
    assert [e.status for e in entries] == ["sent"] * 4
    delivered = [r.json for r in slack.accepted()]
    expected = []
    for e in entries:
        text, blocks = render_blocks(outbox_payload(store, e.message_id))
        expected.append({"text": text, "blocks": blocks})
    assert [{"text": d["text"], "blocks": d["blocks"]} for d in delivered] == expected  # once each, in order
