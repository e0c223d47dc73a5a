"""``send_message``: the daily report digest through the alert receivers, with the outbox's guarantees.

Against the real fake-Slack HTTP server on 127.0.0.1: the digest arrives once with a
link to the report; the same day sent again is not posted again; a 500 is retried
on a later flush and delivered exactly once; a very long digest stays inside Slack's
Block Kit limits; an unknown receiver is a clear error before anything is queued.
"""
from __future__ import annotations

import datetime as dt
import json
import textwrap

import pytest
from alert_fixtures import T0, add_incident, config, make_store
from slack_server import FakeEndpoint, INVALID_BLOCKS, SERVER_ERROR, SLACK_PATH, serving
from test_alert_notifiers import TARGETS, receiver_config

from monitor.alert import SendError, flush_outbox, outbox_entries, outbox_payload, run_alert_cycle, send_message
from monitor.alert.blocks import MAX_BLOCKS, MAX_HEADER, MAX_TEXT, render_blocks, slack_len, validate_blocks
from monitor.alert.console import render_text
from monitor.alert.notifiers import SENT, make_notifier, notifier_types
from monitor.alert.send import message_key
from monitor.alert.webhook import IDEMPOTENCY_HEADER
from monitor.errors import ConfigError

SEC = dt.timedelta(seconds=1)
NOW = dt.datetime(2026, 3, 21, 7, 0)
ENV = "SLACK_WEBHOOK_DIGEST"
URL = "https://reports.example.com/risk/report-2026-03-20.html"


def digest(date: str = "2026-03-20", **fields) -> dict:
    """A message shaped like monitor.report.digest_message()."""
    summary = "Incidents: 1 new, 2 ongoing, 2 resolved · data health: 1 issue"
    text = (f"*Risk metrics daily report - {date}*\n{summary}\n\n"
            "• [HIGH] Confirmed fraud rate (total) ▲ +50.0% (4.00% → 6.00%) since 2026-03-20 (24h)"
            " - mostly channel=web&country=BR (rate change) + 2 slices\n"
            "• [HIGH] Signups (country=GB) ▲ +50.0% (0.04 → 0.06) since 2026-03-15 (6d)\n"
            "Resolved: Card decline rate (country=MX), Signups (total)\n"
            f"Full report: {URL}\n")
    message = {"schema": "monitor.report/v1", "kind": "daily_report", "title": f"Risk metrics daily report - {date}",
               "summary": summary, "text": text, "url": URL, "date": date, "project": "risk",
               "incidents": {"new": 1, "ongoing": 2, "resolved": 2}, "incident_ids": ["inc-a", "inc-b"],
               "data_health_issues": 1}
    message.update(fields)
    return message


@pytest.fixture
def slack(monkeypatch):
    yield from serving(monkeypatch, ENV)


@pytest.fixture
def store(tmp_path):
    return make_store(tmp_path)


def slack_config(*more_receivers, **settings):
    settings.setdefault("timeout", "2s")
    receivers = [{"name": "risk-slack", "type": "slack", "webhook_url_env": ENV}, *more_receivers]
    if more_receivers:
        settings.setdefault("route", {"receiver": "risk-slack"})
    return config(receivers, **settings)


def texts(blocks: list[dict]) -> str:
    out = []
    for block in blocks:
        text = block.get("text") or {}
        out.append(text.get("text", ""))
        out += [e.get("text", "") for e in block.get("elements") or ()]
    return "\n".join(out)


# -- delivery through the fake Slack -----------------------------------------------------------
def test_digest_arrives_once_with_a_link_to_the_report(store, slack):
    result = send_message(slack_config(), digest(), receivers=None, now=NOW, store=store)
    assert result.sent == ["risk-slack"] and result.queued == ["risk-slack"] and result.problems == []
    assert result.describe() == "message sent to risk-slack."
    [request] = slack.requests
    assert request.path == SLACK_PATH
    body = request.json
    blocks = body["blocks"]
    assert validate_blocks(blocks) == []
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text", "emoji": True,
                                                      "text": "Risk metrics daily report - 2026-03-20"}}
    shown = texts(blocks)
    assert "Incidents: 1 new, 2 ongoing, 2 resolved" in shown
    assert "Confirmed fraud rate (total)" in shown and "channel=web&amp;country=BR" in shown  # mrkdwn-escaped
    assert f"<{URL}|Open the full report>" in texts(blocks[-1:])  # the link closes the message
    assert shown.count(URL) == 1  # the text's own "Full report: <url>" line is not repeated
    assert body["text"].startswith("Risk metrics daily report - 2026-03-20: Incidents") and URL in body["text"]
    [entry] = outbox_entries(store)
    assert (entry.status, entry.reason, entry.receiver, entry.attempts) == ("sent", "message", "risk-slack", 1)
    assert entry.incident_ids == ("inc-a", "inc-b") and entry.summary == "Risk metrics daily report - 2026-03-20"
    assert entry.message_id == message_key(digest(), "risk-slack") == result.message_ids["risk-slack"]
    payload = outbox_payload(store, entry.message_id)
    assert payload["url"] == URL and payload["receiver"] == "risk-slack" and payload["created_at"] == NOW.isoformat()
    assert flush_outbox(store, slack_config(), now=NOW + 10 * SEC).sent == [] and len(slack.requests) == 1


def test_sending_the_same_day_again_is_not_posted_twice(store, slack):
    cfg = slack_config({"name": "ops", "type": "console"})
    send_message(cfg, digest(), receivers=["risk-slack"], now=NOW, store=store)
    again = send_message(cfg, digest(summary="regenerated: numbers moved"), receivers="risk-slack",
                         now=NOW + dt.timedelta(hours=3), store=store)
    assert again.duplicates == ["risk-slack"] and again.queued == [] and again.sent == ["risk-slack"]
    assert again.describe() == "message already sent to risk-slack (not sent again)."
    assert len(slack.requests) == 1
    # the key is per day and per receiver: the next day, or another receiver, is a new message
    send_message(cfg, digest("2026-03-21"), receivers=["risk-slack"], now=NOW + dt.timedelta(days=1), store=store)
    assert [json.loads(r.raw)["blocks"][0]["text"]["text"][-10:] for r in slack.requests] == ["2026-03-20",
                                                                                              "2026-03-21"]
    other = send_message(cfg, digest(), receivers=["ops", "risk-slack", "ops"], now=NOW, store=store)
    assert other.receivers == ["ops", "risk-slack"] and other.queued == ["ops"] and other.duplicates == ["risk-slack"]
    assert len({e.message_id for e in outbox_entries(store)}) == 3 and len(slack.requests) == 2


def test_a_500_is_retried_on_a_later_flush_and_delivered_exactly_once(store, slack):
    cfg = slack_config()
    slack.reply(SERVER_ERROR)
    result = send_message(cfg, digest(), now=NOW, store=store)  # a transient failure does not raise
    assert result.pending == ["risk-slack"] and result.sent == []
    [problem] = result.problems
    assert "HTTP 500" in problem and "2026-03-21 07:00:30" in problem  # retry_initial = 30s
    assert flush_outbox(store, cfg, now=NOW + 10 * SEC).held == 1  # not due yet
    assert len(slack.requests) == 1
    rerun = send_message(cfg, digest(), now=NOW + 20 * SEC, store=store)  # the job run again: still queued
    assert rerun.pending == ["risk-slack"] and rerun.duplicates == ["risk-slack"]
    assert len(slack.requests) == 1
    later = flush_outbox(store, cfg, now=NOW + 30 * SEC)
    assert [e.receiver for e in later.sent] == ["risk-slack"]
    run_alert_cycle(store, cfg, now=NOW + 3600 * SEC)  # later flushes and re-runs post nothing more
    send_message(cfg, digest(), now=NOW + 7200 * SEC, store=store)
    assert [r.status for r in slack.requests] == [500, 200]
    [entry] = outbox_entries(store)
    assert (entry.status, entry.attempts, entry.last_status_code) == ("sent", 2, 200)


def test_a_receiver_that_is_down_gets_it_when_it_is_back(store, slack):
    cfg = slack_config()
    slack.stop()
    result = send_message(cfg, digest(), now=NOW, store=store)
    assert result.pending == ["risk-slack"] and "connection refused" in result.problems[0]
    slack.start()
    assert len(flush_outbox(store, cfg, now=NOW + 30 * SEC).sent) == 1
    assert len(slack.accepted()) == 1


def test_a_digest_waits_behind_an_undelivered_alert_of_the_same_receiver(store, slack):
    cfg = slack_config()
    add_incident(store)
    slack.reply(SERVER_ERROR)
    run_alert_cycle(store, cfg, now=T0)  # the alert waits for its retry...
    result = send_message(cfg, digest(), now=T0 + SEC, store=store)
    assert result.pending == ["risk-slack"]
    assert result.problems == ["risk-slack: queued behind an earlier undelivered message to this receiver"]
    assert len(slack.requests) == 1  # ...and the digest does not overtake it
    flush_outbox(store, cfg, now=T0 + 30 * SEC)
    assert [r.json["text"][:9] for r in slack.requests[1:]] == ["[FIRING] ", "Risk metr"]


def test_a_rejected_digest_raises_and_is_sent_again_by_a_new_call(store, slack):
    cfg = slack_config()
    slack.reply(INVALID_BLOCKS)
    with pytest.raises(SendError, match=r"rejected for good \(risk-slack: HTTP 400 rejected: invalid_blocks\)") as err:
        send_message(cfg, digest(), now=NOW, store=store)
    assert err.value.result.failed == ["risk-slack"]
    # nothing was posted, so after fixing the receiver a re-run delivers it (once)
    retry = send_message(cfg, digest(), now=NOW + SEC, store=store)
    assert retry.queued == ["risk-slack"] and retry.sent == ["risk-slack"]
    send_message(cfg, digest(), now=NOW + 2 * SEC, store=store)
    assert [r.status for r in slack.requests] == [400, 200]


# -- Slack limits ------------------------------------------------------------------------------
def test_block_kit_stays_within_limits_for_a_very_long_digest(store, slack):
    lines = [f"• [HIGH] Metric {i:03d} <{'x' * 300}> & more ▲ 🚨 +{i}%" for i in range(400)]
    lines.insert(3, "Data: " + "decline_rate: failed; " * 400)  # one line far over 3,000 characters
    lines += [f"Resolved line {i}: " + "y" * 600 for i in range(300)]  # non-bullet text needing > 50 blocks
    message = digest(title="🚨 " + "Very long title " * 20, text="\n".join(lines))
    fallback, blocks = render_blocks(message, max_alerts=10)
    assert validate_blocks(blocks) == []
    assert len(blocks) <= MAX_BLOCKS and slack_len(blocks[0]["text"]["text"]) <= MAX_HEADER
    assert all(slack_len(b["text"]["text"]) <= MAX_TEXT for b in blocks if b["type"] == "section")
    shown = texts(blocks)
    assert shown.count("[HIGH] Metric") == 10 and "… and 390 more lines in the full report" in shown
    assert "the rest does not fit in a Slack message" in shown
    assert f"<{URL}|Open the full report>" in texts(blocks[-1:])
    assert "&lt;xxx" in shown and "<xxx" not in shown and slack_len(fallback) <= 3000
    # and Slack takes it: the posted payload is the same, nothing fell back to text only
    send_message(slack_config(max_alerts_per_message=10), message, now=NOW, store=store)
    [request] = slack.accepted()
    assert request.json["blocks"] == blocks


def test_a_file_link_is_shown_but_not_linked():
    local = "file:///srv/reports/report-2026-03-20.html"
    _, blocks = render_blocks(digest(url=local, text="*Risk metrics daily report - 2026-03-20*\nFull report: " + local))
    assert validate_blocks(blocks) == [] and texts(blocks[-1:]) == f"Full report: `{local}`"


# -- errors ------------------------------------------------------------------------------------
def test_an_unknown_receiver_is_a_clear_error_and_nothing_is_queued(store, slack):
    cfg = slack_config({"name": "ops", "type": "console"})
    with pytest.raises(ConfigError) as err:
        send_message(cfg, digest(), receivers=["risk-lead", "ops", "siem"], now=NOW, store=store)
    assert str(err.value) == ("Unknown receivers 'risk-lead', 'siem'; configured receivers are ['ops', 'risk-slack'] "
                              "(names of [[alerts.receivers]], e.g. in [report] receivers).")
    assert outbox_entries(store) == [] and slack.requests == []


def test_alerting_not_set_up_and_incomplete_messages_are_errors(store):
    from monitor.alert import parse_alert_config

    with pytest.raises(ConfigError, match=r"alerting is not configured .* set \[report\] send = false"):
        send_message(parse_alert_config({}), digest(), now=NOW, store=store)
    off = config(enabled=False)
    with pytest.raises(ConfigError, match=r"alerting is turned off \(\[alerts\] enabled = false\)"):
        send_message(off, digest(), now=NOW, store=store)
    with pytest.raises(ValueError, match="message is missing date"):
        send_message(config(), digest(date=""), now=NOW, store=store)
    assert outbox_entries(store) == []


# -- every notifier type renders it ------------------------------------------------------------
@pytest.mark.parametrize("kind", notifier_types())
def test_every_notifier_type_delivers_the_digest(kind, tmp_path, capsys):
    made = TARGETS[kind](tmp_path, capsys)
    try:
        notifier = make_notifier(receiver_config(kind, made.options), env=made.env)
        payload = {**digest(), "message_id": "k-1", "receiver": "r", "created_at": NOW.isoformat()}
        assert notifier.send(payload, idempotency_key="k-1", now=NOW).outcome == SENT
        received = made.received()
        assert "Risk metrics daily report - 2026-03-20" in received and URL in received
        assert "Signups (country=GB)" in received
    finally:
        made.close()


def test_webhook_gets_the_message_as_json_signed_with_the_idempotency_key(store, monkeypatch):
    endpoint = FakeEndpoint(secret="s3cret").start()
    try:
        monkeypatch.setenv("HOOK_URL", endpoint.url)
        monkeypatch.setenv("HOOK_SECRET", "s3cret")
        cfg = config([{"name": "siem", "type": "webhook", "url_env": "HOOK_URL", "secret_env": "HOOK_SECRET"}],
                     timeout="2s")
        send_message(cfg, digest(), now=NOW, store=store)
        send_message(cfg, digest(), now=NOW + SEC, store=store)
        [request] = endpoint.requests
        assert endpoint.bad_signatures == 0 and request.status == 200
        body = request.json
        assert body == {**digest(), "message_id": message_key(digest(), "siem"), "receiver": "siem",
                        "created_at": NOW.isoformat()}
        assert request.headers[IDEMPOTENCY_HEADER] == body["message_id"]
    finally:
        endpoint.stop()


def test_console_text_is_readable():
    text = render_text({**digest(), "receiver": "ops", "created_at": NOW.isoformat()})
    assert text.splitlines()[1:3] == ["Risk metrics daily report - 2026-03-20",
                                      "  daily report · to ops · 2026-03-21 07:00 UTC · risk · 2026-03-20"]
    assert "channel=web&country=BR" in text and text.count(URL) == 1 and f"Full report: {URL}" in text


# -- the report's own send path ----------------------------------------------------------------
def test_the_report_sender_is_send_message_called_the_way_send_digest_calls_it(tmp_path, slack):
    """monitor.report.send_digest: ``alert_sender()(config, message, receivers=settings.receivers, now=now)``
    with the ProjectConfig and ``[report] receivers`` (a tuple, empty = the default route)."""
    from monitor.config import load_config
    from monitor.report.deliver import alert_sender
    from monitor.report.settings import report_settings

    (tmp_path / "monitor.toml").write_text(textwrap.dedent(f"""\
        [project]
        name = "risk"
        [alerts]
        timeout = "2s"
        [[alerts.receivers]]
        name = "risk-slack"
        type = "slack"
        webhook_url_env = "{ENV}"
    """))
    project = load_config(tmp_path / "monitor.toml")
    sender = alert_sender()
    assert sender is send_message
    message = digest(project="")  # no project in the message: the config's name keys it
    result = sender(project, message, receivers=report_settings(project).receivers, now=NOW)
    sender(project, message, receivers=(), now=NOW + dt.timedelta(hours=1))
    assert result.sent == ["risk-slack"] and len(slack.requests) == 1
    assert result.message_ids["risk-slack"] == message_key(digest(project="risk"), "risk-slack")
    assert project.store_path.exists()
