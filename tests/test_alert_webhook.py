"""Webhook delivery: HMAC signature checked by the receiver, idempotency key survives a crash."""
from __future__ import annotations

import datetime as dt

import pytest
from alert_fixtures import T0, add_incident, config, make_store
from slack_server import Reply, FakeEndpoint

from monitor.alert import flush_outbox, outbox_entries, run_alert_cycle
from monitor.alert.webhook import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify

SECRET = "s3cr3t-hmac-key"
MIN = dt.timedelta(minutes=1)


class Crash(Exception):
    """Stands for the process dying between the POST and recording its outcome."""


@pytest.fixture
def receiver(monkeypatch):
    endpoint = FakeEndpoint(secret=SECRET).start()
    monkeypatch.setenv("HOOK_URL", endpoint.url)
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    yield endpoint
    endpoint.stop()


@pytest.fixture
def store(tmp_path):
    return make_store(tmp_path)


def hook_config(**settings):
    return config([{"name": "siem", "type": "webhook", "url_env": "HOOK_URL", "secret_env": "HOOK_SECRET"}],
                  timeout="2s", **settings)


def test_payload_is_signed_and_carries_the_idempotency_key(store, receiver):
    add_incident(store)
    run_alert_cycle(store, hook_config(), now=T0)
    [request] = receiver.requests
    assert receiver.bad_signatures == 0 and request.status == 200
    assert verify(SECRET, request.headers[TIMESTAMP_HEADER], request.raw, request.headers[SIGNATURE_HEADER])
    assert not verify("another-secret", request.headers[TIMESTAMP_HEADER], request.raw,
                      request.headers[SIGNATURE_HEADER])
    body = request.json
    assert body["message_id"] == request.headers[IDEMPOTENCY_HEADER] == outbox_entries(store)[0].message_id
    assert body["schema"] == "monitor.alert/v1" and body["alerts"][0]["metric"] == "fraud_rate"
    assert request.headers[TIMESTAMP_HEADER] == str(int(T0.replace(tzinfo=dt.timezone.utc).timestamp()))


def test_wrong_secret_is_rejected_by_the_receiver_and_reported(store, receiver, monkeypatch):
    monkeypatch.setenv("HOOK_SECRET", "not-the-shared-secret")
    add_incident(store)
    result = run_alert_cycle(store, hook_config(), now=T0)
    assert receiver.bad_signatures == 1 and receiver.logical == {}
    [failed] = result.flush.failed  # 401: the receiver will never accept it; retrying cannot help
    assert failed.last_status_code == 401 and "not-the-shared-secret" not in failed.last_error


def test_crash_after_post_resends_with_the_same_key_and_the_receiver_sees_one_alert(store, receiver):
    add_incident(store)

    def crash(message_id, delivery):
        raise Crash(message_id)

    with pytest.raises(Crash):
        run_alert_cycle(store, hook_config(sending_timeout="5m"), now=T0, after_send=crash)
    [entry] = outbox_entries(store)
    assert entry.status == "sending"  # the POST happened, its outcome was never recorded
    flush_outbox(store, hook_config(sending_timeout="5m"), now=T0 + MIN)
    assert len(receiver.requests) == 1  # still inside sending_timeout: maybe another process is sending it
    flush_outbox(store, hook_config(sending_timeout="5m"), now=T0 + 6 * MIN)
    keys = [r.headers[IDEMPOTENCY_HEADER] for r in receiver.requests]
    assert len(keys) == 2 and keys[0] == keys[1]
    assert len(receiver.logical) == 1  # one logical alert
    [entry] = outbox_entries(store)
    assert (entry.status, entry.attempts) == ("sent", 2)
    with store.connect() as con:
        outcomes = [r[0] for r in con.execute("SELECT outcome FROM alert_attempts ORDER BY attempted_at, attempt")
                    .fetchall()]
    assert outcomes == ["interrupted", "sent"]


def test_concurrent_flushers_cannot_both_claim_a_message(store, receiver):
    add_incident(store)
    run_alert_cycle(store, hook_config(), now=T0, flush=False)
    [entry] = outbox_entries(store)
    inner = []

    def second_flusher(message_id, delivery):
        # while the first flusher is between POST and record, a second one runs
        if not inner:
            inner.append(flush_outbox(store, hook_config(), now=T0))

    flush_outbox(store, hook_config(), now=T0, after_send=second_flusher)
    assert len(receiver.requests) == 1 and inner[0].sent == [] and inner[0].held == 1
    assert outbox_entries(store)[0].status == "sent"


def test_422_is_permanent_and_503_is_retried(store, receiver):
    add_incident(store)
    receiver.reply(Reply(503, "busy"), Reply(422, "schema rejected"))
    result = run_alert_cycle(store, hook_config(), now=T0)
    assert result.flush.retrying[0].last_status_code == 503
    result = flush_outbox(store, hook_config(), now=T0 + 10 * MIN)
    assert result.failed[0].last_status_code == 422 and "schema rejected" in result.failed[0].last_error


def test_signature_is_hmac_sha256_of_timestamp_dot_body():
    import hashlib
    import hmac

    body = b'{"a":1}'
    expected = hmac.new(b"k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign("k", "1700000000", body) == f"sha256={expected}"
