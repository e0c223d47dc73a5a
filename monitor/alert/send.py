"""Send one free-form message (the daily report digest) through the alert receivers.

``send_message(config, message, receivers=..., now=...)`` gives a message that is
not about one incident group the same delivery guarantees as an alert: it is
queued in the outbox, then flushed, so a receiver that is down gets it later
(retries with backoff, on any later flush or alert cycle), in order with that
receiver's alerts, and never twice:

* The outbox id (and webhook ``Idempotency-Key``) is derived from the message's
  ``schema``, ``project`` and ``date`` and the receiver name, so running the same
  day's report again finds the message already queued or sent and posts nothing.
* Only a message that failed *permanently* (the receiver rejected it, so nothing
  was posted) is queued again by a new call: a re-run after fixing the receiver
  delivers it.

Notifiers tell the two kinds apart by ``schema`` (``is_alert_message``): Slack
renders a free-form message as a header, facts, summary, the text and a link to
the report (``blocks.render_message_blocks``), the console and file notifiers as
readable text, the webhook posts it as JSON (documented in docs/alerts.md).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from monitor.alert.blocks import message_title
from monitor.alert.config import AlertConfig, load_alert_config
from monitor.alert.notifiers import Notifier
from monitor.alert.outbox import FlushResult, OutboxEntry, _entries, deliver, enqueue_keyed, undelivered_rows
from monitor.clock import utc_naive
from monitor.errors import ConfigError, MonitorError
from monitor.store import Store

log = logging.getLogger(__name__)

REASON = "message"  # the outbox ``reason`` of free-form messages (alerts: new | update | repeat | resolved)


class SendError(MonitorError):
    """A receiver rejected the message for good; ``result`` says what happened at every receiver."""

    def __init__(self, message: str, result: "SendResult"):
        super().__init__(message)
        self.result = result


@dataclass
class SendResult:
    """What ``send_message`` did, per receiver (in the order asked)."""

    receivers: list[str]
    message_ids: dict[str, str]  # receiver -> outbox id (= webhook Idempotency-Key)
    queued: list[str] = field(default_factory=list)  # receivers it was queued for by this call
    duplicates: list[str] = field(default_factory=list)  # already queued or sent earlier: nothing new queued
    entries: dict[str, OutboxEntry] = field(default_factory=dict)  # receiver -> outbox row after the flush
    flush: FlushResult = field(default_factory=FlushResult)

    def _with(self, status: str) -> list[str]:
        return [r for r in self.receivers if r in self.entries and self.entries[r].status == status]

    @property
    def sent(self) -> list[str]:
        """Receivers that have the message (now or by an earlier call)."""
        return self._with("sent")

    @property
    def pending(self) -> list[str]:
        """Receivers still to get it: a transient failure (retried by later flushes) or queued behind an earlier one."""
        return self._with("pending") + self._with("sending")

    @property
    def failed(self) -> list[str]:
        return self._with("failed")

    @property
    def problems(self) -> list[str]:
        out = []
        for receiver in self.receivers:
            entry = self.entries.get(receiver)
            if entry is None or entry.status == "sent":
                continue
            if entry.status == "failed":
                out.append(f"{receiver}: rejected for good: {entry.last_error}")
            elif entry.last_error:
                out.append(f"{receiver}: not delivered yet, retried from {entry.next_attempt_at:%Y-%m-%d %H:%M:%S} "
                           f"(attempt {entry.attempts}): {entry.last_error}")
            else:
                out.append(f"{receiver}: queued behind an earlier undelivered message to this receiver")
        return out

    def describe(self) -> str:
        parts = []
        if self.sent:
            already = [r for r in self.sent if r in self.duplicates]
            fresh = [r for r in self.sent if r not in self.duplicates]
            if fresh:
                parts.append(f"sent to {', '.join(fresh)}")
            if already:
                parts.append(f"already sent to {', '.join(already)} (not sent again)")
        if self.pending:
            parts.append(f"waiting in the outbox for {', '.join(self.pending)}")
        if self.failed:
            parts.append(f"rejected by {', '.join(self.failed)}")
        return "message " + ("; ".join(parts) or "not queued") + "."


def message_key(message: Mapping[str, Any], receiver: str, *, project: str = "") -> str:
    """The outbox id of ``message`` for ``receiver``: a hash of schema, project, date and receiver."""
    identity = [str(message.get("schema") or ""), str(message.get("project") or project),
                str(message.get("date") or ""), receiver]
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:32]


def send_message(config, message: Mapping[str, Any], *, receivers: Iterable[str] | str | None = None,
                 now: dt.datetime, store: Store | None = None, notifiers: Mapping[str, Notifier] | None = None,
                 env: Mapping[str, str] | None = None) -> SendResult:
    """Queue ``message`` for each receiver (once per schema, project, date and receiver), then deliver it.

    ``config``: the ProjectConfig (or an AlertConfig, with ``store``). ``receivers``: names of
    ``[[alerts.receivers]]``; None or empty means the default route's receiver. ``message`` needs
    ``schema``, ``title``, ``text`` and ``date`` (the day it is about, part of the dedup key);
    ``summary``, ``url``, ``project`` and any other fields are kept and posted to webhooks as given.
    ``store`` (default: the project's), ``notifiers`` and ``env`` are as in ``flush_outbox``.

    Returns a ``SendResult``. A transient failure is not an error: the message stays in the outbox
    and the next flush (every alert cycle) retries it. Raises ``SendError`` when a receiver
    rejected it for good, ``ConfigError`` for an unknown receiver or when alerting is not set up,
    before anything is queued.
    """
    cfg: AlertConfig = load_alert_config(config)
    _check_message(message)
    targets = _targets(cfg, receivers)
    if store is None:
        if not hasattr(config, "store_path"):
            raise TypeError("send_message needs store= when config is an AlertConfig")
        store = Store(config.store_path)
    now = utc_naive(now)
    project = str(message.get("project") or getattr(config, "name", "") or "")
    title = message_title(message)
    group_key = f"{REASON}:{message['schema']}:{project}"
    result = SendResult(receivers=targets, message_ids={r: message_key(message, r, project=project) for r in targets})

    with store.connect() as con:
        con.execute("BEGIN TRANSACTION")
        try:
            for receiver in targets:
                message_id = result.message_ids[receiver]
                payload = {**message, "message_id": message_id, "receiver": receiver,
                           "created_at": now.isoformat()}
                outcome = enqueue_keyed(con, message_id=message_id, receiver=cfg.receivers[receiver],
                                        group_key=group_key, reason=REASON, payload=payload, summary=title,
                                        incident_ids=[str(i) for i in message.get("incident_ids") or ()], now=now)
                (result.duplicates if outcome == "duplicate" else result.queued).append(receiver)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        rows = [row for row in undelivered_rows(con) if row[2] in targets]
    if rows:
        result.flush = deliver(store, cfg, rows, now=now, notifiers=notifiers, env=env)
    with store.connect() as con:
        ids = list(result.message_ids.values())
        by_id = {e.message_id: e for e in _entries(con, "WHERE message_id IN (SELECT unnest(?::VARCHAR[]))", [ids])}
    result.entries = {r: by_id[i] for r, i in result.message_ids.items() if i in by_id}

    if result.failed:
        reasons = "; ".join(f"{r}: {result.entries[r].last_error}" for r in result.failed)
        others = f" Elsewhere: {result.describe()}" if len(result.failed) < len(targets) else ""
        raise SendError(f"{title} was rejected for good ({reasons}); fix the receiver and send it again "
                        f"(a rejected message is queued again).{others}", result)
    if result.pending:
        log.warning("%s not delivered yet, it stays in the outbox and is retried: %s", title,
                    "; ".join(result.problems))
    log.info("%s: %s", title, result.describe())
    return result


def _check_message(message: Mapping[str, Any]) -> None:
    if not isinstance(message, Mapping):
        raise TypeError(f"message must be a dict, not {type(message).__name__}")
    missing = [k for k in ("schema", "title", "text", "date") if not str(message.get(k) or "").strip()]
    if missing:
        raise ValueError(f"message is missing {', '.join(missing)} (schema, title, text and date are required; "
                         "schema, project and date identify it so a re-send is not posted twice)")
    if message.get("schema") == "monitor.alert/v1" or "alerts" in message:
        raise ValueError("send_message sends free-form messages; incident alerts go through run_alert_cycle")


def _targets(cfg: AlertConfig, receivers: Iterable[str] | str | None) -> list[str]:
    """The receiver names to send to, checked against [alerts] receivers (all problems in one error)."""
    if not cfg.enabled or not cfg.receivers:
        state = "turned off ([alerts] enabled = false)" if cfg.receivers else "not configured (no [[alerts.receivers]])"
        raise ConfigError(f"Cannot send the message: alerting is {state}; configure a receiver, "
                          "or set [report] send = false to only write the report files.")
    names = [receivers] if isinstance(receivers, str) else list(receivers or ())
    if not names:
        if cfg.route is None:
            raise ConfigError("Cannot send the message: no receivers were given and [alerts] has no default route "
                              "(set alerts.route.receiver).")
        names = [cfg.route.receiver]
    unknown = [n for n in names if not isinstance(n, str) or n not in cfg.receivers]
    if unknown:
        raise ConfigError(f"Unknown receiver{'s' if len(unknown) != 1 else ''} "
                          f"{', '.join(repr(n) for n in unknown)}; configured receivers are {sorted(cfg.receivers)} "
                          "(names of [[alerts.receivers]], e.g. in [report] receivers).")
    return list(dict.fromkeys(names))
