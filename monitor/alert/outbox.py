"""The outbox: queued messages, delivered in order, retried with backoff, never lost.

Life of a message: ``pending`` -> (claimed) ``sending`` -> ``sent`` | ``pending``
again with a later ``next_attempt_at`` (transient failure) | ``failed``
(permanent: the receiver rejected it, or every attempt failed for ``give_up_after``
since it was queued; kept with the reason, reported as lost: ``monitor run`` exits
non-zero and the ``alert_lost`` meta-alert is raised, see ``monitor.alert.lost``).

Why it cannot lose or repeat an alert:

* Queuing happens in the same transaction as the group state that caused it,
  so a crash either keeps both or neither.
* Before a POST the row is committed as ``sending`` (a short write connection);
  right after the POST the outcome is committed. Only a crash between those two
  commits leaves a row in ``sending``; after ``sending_timeout`` the next flush
  sends it again with the *same* idempotency key (webhook receivers dedup on
  it; Slack has no such key -- see docs/alerts.md for that at-least-once window).
* The claim is a conditional UPDATE (status and attempt count unchanged), so two
  processes flushing at once cannot both send one message.
* Per receiver, messages go in ``seq`` order: a message waiting for a retry
  holds back every later message of that receiver, so a resolved notice never
  overtakes the alert it resolves. Permanent failures do not hold the queue, so a
  receiver that never answers holds it for ``give_up_after`` at most.

No connection is held while sending, so a slow receiver never blocks the store.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from monitor.alert.config import AlertConfig, ReceiverConfig, load_alert_config
from monitor.alert.planner import PlannedMessage
from monitor.alert.notifiers import FAILED, RETRY, SENT, Delivery, Notifier, make_notifier
from monitor.clock import utc_naive
from monitor.store import Store

log = logging.getLogger(__name__)

UNDELIVERED = ("pending", "sending")
_COLUMNS = ("seq", "message_id", "receiver", "receiver_type", "group_key", "reason", "status", "summary",
            "incident_ids", "created_at", "attempts", "next_attempt_at", "last_attempt_at", "sent_at",
            "last_status_code", "last_error")


@dataclass(frozen=True)
class OutboxEntry:
    """One message in the outbox, as reported to the CLI, dashboard and tests."""

    seq: int
    message_id: str
    receiver: str
    receiver_type: str
    group_key: str
    reason: str
    status: str
    summary: str
    incident_ids: tuple[str, ...]
    created_at: dt.datetime
    attempts: int
    next_attempt_at: dt.datetime
    last_attempt_at: dt.datetime | None
    sent_at: dt.datetime | None
    last_status_code: int | None
    last_error: str | None


@dataclass
class FlushResult:
    sent: list[OutboxEntry] = field(default_factory=list)
    retrying: list[OutboxEntry] = field(default_factory=list)  # transient failure this flush; retried later
    failed: list[OutboxEntry] = field(default_factory=list)  # permanent failure this flush
    held: int = 0  # messages not tried: not due yet, or queued behind an undelivered one

    @property
    def problems(self) -> list[str]:
        out = [f"{e.receiver}: message {e.message_id} failed permanently: {e.last_error}" for e in self.failed]
        out += [f"{e.receiver}: message {e.message_id} will be retried at {e.next_attempt_at:%Y-%m-%d %H:%M:%S} "
                f"(attempt {e.attempts}): {e.last_error}" for e in self.retrying]
        return out


AfterSend = Callable[[str, Delivery], None]


def enqueue(con, planned: list[PlannedMessage], config: AlertConfig, *, now: dt.datetime) -> list[str]:
    """Queue messages on an open connection (the caller owns the transaction); returns their ids."""
    ids = []
    for item in planned:
        message_id = uuid.uuid4().hex  # also the idempotency key of every attempt
        payload = dict(item.message, message_id=message_id)
        receiver = config.receivers[item.receiver]
        con.execute(
            "INSERT INTO alert_outbox (message_id, receiver, receiver_type, group_key, reason, status, summary,"
            " payload_json, incident_ids, created_at, attempts, next_attempt_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, 0, ?, ?)",
            [message_id, item.receiver, receiver.type, item.group_key, item.reason, payload["summary"],
             json.dumps(payload, sort_keys=True, default=str), list(item.incident_ids), now, now, now])
        ids.append(message_id)
    return ids


def enqueue_keyed(con, *, message_id: str, receiver: ReceiverConfig, group_key: str, reason: str,
                  payload: dict[str, Any], summary: str, incident_ids: list[str], now: dt.datetime) -> str:
    """Queue one message under a caller-chosen id, at most once per id; returns what happened.

    ``queued``: new row. ``requeued``: an earlier row with this id had failed permanently (the
    receiver rejected it, so nothing was posted); it is queued again with this payload.
    ``duplicate``: the id is already pending, sending or sent; nothing changes.
    """
    inserted = con.execute(
        "INSERT INTO alert_outbox (message_id, receiver, receiver_type, group_key, reason, status, summary,"
        " payload_json, incident_ids, created_at, attempts, next_attempt_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, 0, ?, ?) ON CONFLICT (message_id) DO NOTHING",
        [message_id, receiver.name, receiver.type, group_key, reason, summary,
         json.dumps(payload, sort_keys=True, default=str), list(incident_ids), now, now, now]).fetchone()[0]
    if inserted:
        return "queued"
    requeued = con.execute(
        "UPDATE alert_outbox SET status = 'pending', next_attempt_at = ?, payload_json = ?, summary = ?,"
        " incident_ids = ?, updated_at = ? WHERE message_id = ? AND status = 'failed'",
        [now, json.dumps(payload, sort_keys=True, default=str), summary, list(incident_ids), now,
         message_id]).fetchone()[0]
    return "requeued" if requeued else "duplicate"


def backoff(attempts: int, config: AlertConfig, retry_after: float | None) -> dt.timedelta:
    """Delay before the next attempt: Retry-After when the receiver gave one, else exponential.

    No jitter: there is one sender per store, so retries cannot stampede.
    """
    if retry_after is not None:
        return dt.timedelta(seconds=retry_after)
    delay = config.retry_initial * (2 ** max(0, attempts - 1))
    return min(delay, config.retry_max)


def flush_outbox(store: Store, config, *, now: dt.datetime, notifiers: Mapping[str, Notifier] | None = None,
                 env: Mapping[str, str] | None = None, after_send: AfterSend | None = None) -> FlushResult:
    """Send every message that is due, oldest first per receiver; record each outcome.

    ``notifiers`` replaces the configured notifier of a receiver (tests, demos);
    ``after_send(message_id, delivery)`` runs between the POST and recording its
    outcome -- the exact window a crash would hit, so tests can raise there.
    """
    cfg = load_alert_config(config)
    if not store.path.exists():
        return FlushResult()
    with store.connect() as con:
        rows = undelivered_rows(con)
    return deliver(store, cfg, rows, now=utc_naive(now), notifiers=notifiers, env=env, after_send=after_send)


def undelivered_rows(con) -> list[tuple]:
    return con.execute(
        "SELECT seq, message_id, receiver, status, attempts, next_attempt_at, last_attempt_at, payload_json,"
        " created_at FROM alert_outbox WHERE status IN ('pending', 'sending') ORDER BY seq").fetchall()


def claim_head(con, cfg: AlertConfig, rows: list[tuple], *, now: dt.datetime, receivers: set[str]) -> str | None:
    """Claim the oldest message, if due, on a connection the caller already has open.

    The cycle does this in its planning connection (closed before any POST): one
    connection less per cycle, same commit order. Returns the claimed message id.
    """
    if not rows or rows[0][2] not in receivers or not _due(rows[0], cfg, now):
        return None
    head = rows[0]
    return head[1] if _claim(con, head[1], status=head[3], attempts=head[4], now=now) else None


def _due(row: tuple, cfg: AlertConfig, now: dt.datetime) -> bool:
    """Pending and past its next attempt, or left 'sending' by a process that died (sending_timeout)."""
    status, next_attempt_at, last_attempt_at = row[3], row[5], row[6]
    if status == "sending":
        return last_attempt_at is None or now >= last_attempt_at + cfg.sending_timeout
    return now >= next_attempt_at


def deliver(store: Store, cfg: AlertConfig, rows: list[tuple], *, now: dt.datetime,
            notifiers: Mapping[str, Notifier] | None = None, env: Mapping[str, str] | None = None,
            after_send: AfterSend | None = None, preclaimed: str | None = None) -> FlushResult:
    """Deliver ``rows`` (from ``undelivered_rows``), receiver by receiver, in seq order.

    ``preclaimed``: the id ``claim_head`` already claimed.
    """
    result = FlushResult()
    queues: dict[str, list] = {}
    for row in rows:
        queues.setdefault(row[2], []).append(row)
    for receiver_name, queue in queues.items():
        notifier = (notifiers or {}).get(receiver_name)
        if notifier is None and receiver_name in cfg.receivers:
            notifier = make_notifier(cfg.receivers[receiver_name], env=env)
        if notifier is None:
            with store.connect() as con:  # nowhere to send: report it instead of holding it forever
                for row in queue:
                    _record(con, row, Delivery(FAILED, error=f"receiver {receiver_name!r} is no longer configured"),
                            cfg, now=now, attempt=row[4], result=result)
            continue
        _deliver_queue(store, cfg, notifier, queue, now=now, after_send=after_send, result=result,
                       preclaimed=preclaimed)
    return result


def _deliver_queue(store: Store, cfg: AlertConfig, notifier: Notifier, queue: list[tuple], *, now: dt.datetime,
                   after_send: AfterSend | None, result: FlushResult, preclaimed: str | None = None) -> None:
    # The outcome of one message and the claim of the next share a connection: same commit order
    # (claim -> POST -> record), half the connection opens.
    unrecorded = None  # an exception (a crash, in tests) before it is recorded leaves the row 'sending'
    for index, row in enumerate(queue):
        message_id, status, attempts, payload = row[1], row[3], row[4], row[7]
        if message_id == preclaimed:
            claimed = True
        elif not _due(row, cfg, now):
            result.held += len(queue) - index  # not due, or another process is sending it right now
            break
        else:
            with store.connect() as con:
                if unrecorded is not None:
                    _record(con, *unrecorded, cfg, now=now, result=result)
                    unrecorded = None
                claimed = _claim(con, message_id, status=status, attempts=attempts, now=now)
        if not claimed:
            result.held += len(queue) - index
            break
        delivery = _send(notifier, json.loads(payload), message_id=message_id, now=now)
        if after_send is not None:
            after_send(message_id, delivery)
        unrecorded = (row, delivery)
        if delivery.outcome == RETRY:
            result.held += len(queue) - index - 1
            break
    if unrecorded is not None:
        with store.connect() as con:
            _record(con, *unrecorded, cfg, now=now, result=result)


def _send(notifier: Notifier, message: dict[str, Any], *, message_id: str, now: dt.datetime) -> Delivery:
    try:
        return notifier.send(message, idempotency_key=message_id, now=now)
    except Exception as exc:  # noqa: BLE001 - a notifier bug must not lose the alert: retry it later
        # No traceback in the log: exception texts from HTTP libraries can carry the URL (a secret).
        log.error("notifier of receiver %s raised %s; the message will be retried", notifier.receiver.name,
                  type(exc).__name__)
        return Delivery(RETRY, error=f"notifier error: {type(exc).__name__}")


def _claim(con, message_id: str, *, status: str, attempts: int, now: dt.datetime) -> bool:
    """Mark the row 'sending' (committed before the POST); False if someone else got there first."""
    changed = con.execute(
        "UPDATE alert_outbox SET status = 'sending', attempts = attempts + 1, last_attempt_at = ?, updated_at = ?"
        " WHERE message_id = ? AND status = ? AND attempts = ?",
        [now, now, message_id, status, attempts]).fetchone()[0]
    return bool(changed)


def _record(con, row, delivery: Delivery, config: AlertConfig, *, now: dt.datetime, result: FlushResult,
            attempt: int | None = None) -> None:
    """Commit the outcome right after the POST (this is what shrinks the duplicate window)."""
    message_id, receiver, status_before, attempts_before = row[1], row[2], row[3], row[4]
    attempt = attempts_before + 1 if attempt is None else attempt
    if delivery.outcome == RETRY and len(row) > 8 and now >= row[8] + config.give_up_after:
        delivery = Delivery(FAILED, status_code=delivery.status_code,
                            error=f"given up after {attempt} attempt(s) over {_span(now - row[8])}: {delivery.error}")
    if delivery.outcome == SENT:
        status, next_at = "sent", now
    elif delivery.outcome == RETRY:
        status, next_at = "pending", now + backoff(attempt, config, delivery.retry_after)
    else:
        status, next_at = "failed", now
    con.execute("BEGIN TRANSACTION")
    con.execute(
        "UPDATE alert_outbox SET status = ?, next_attempt_at = ?, sent_at = CASE WHEN ? THEN ? ELSE sent_at END,"
        " last_status_code = ?, last_error = ?, updated_at = ? WHERE message_id = ?",
        [status, next_at, status == "sent", now, delivery.status_code, delivery.error, now, message_id])
    if status_before == "sending":
        con.execute("INSERT INTO alert_attempts VALUES (?, ?, ?, ?, 'interrupted', NULL, ?, NULL)",
                    [message_id, attempt - 1, receiver, now,
                     "the process stopped between sending and recording; sent again with the same key"])
    con.execute("INSERT INTO alert_attempts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [message_id, attempt, receiver, now, delivery.outcome, delivery.status_code, delivery.error,
                 delivery.retry_after])
    con.execute("COMMIT")
    entry = _entries(con, "WHERE message_id = ?", [message_id])[0]
    if delivery.outcome == SENT:
        result.sent.append(entry)
    elif delivery.outcome == RETRY:
        log.warning("alert to %s not delivered (attempt %d), retrying at %s: %s",
                    receiver, attempt, next_at, delivery.error)
        result.retrying.append(entry)
    else:
        log.error("alert to %s failed permanently: %s", receiver, delivery.error)
        result.failed.append(entry)


def outbox_entries(store: Store, *, status: str | None = None, receiver: str | None = None,
                   limit: int = 200) -> list[OutboxEntry]:
    """The alert log, newest first (status: pending | sending | sent | failed)."""
    if not store.path.exists():
        return []
    clauses, params = [], []
    if status:
        clauses.append("status = ?")
        params.append(status)
    if receiver:
        clauses.append("receiver = ?")
        params.append(receiver)
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    with store.connect() as con:
        return _entries(con, where + " ORDER BY seq DESC LIMIT ?", [*params, limit])


def outbox_payload(store: Store, message_id: str) -> dict[str, Any] | None:
    with store.connect() as con:
        row = con.execute("SELECT payload_json FROM alert_outbox WHERE message_id = ?", [message_id]).fetchone()
    return json.loads(row[0]) if row else None


def _entries(con, tail: str, params: list) -> list[OutboxEntry]:
    rows = con.execute(f"SELECT {', '.join(_COLUMNS)} FROM alert_outbox {tail}", params).fetchall()
    out = []
    for r in rows:
        values = dict(zip(_COLUMNS, r))
        values["incident_ids"] = tuple(values["incident_ids"] or ())
        out.append(OutboxEntry(**values))
    return out


def _span(delta: dt.timedelta) -> str:
    """'26h 5m', '5m', '40s': how long a message was tried, for people."""
    seconds = int(delta.total_seconds())
    hours, minutes = seconds // 3600, seconds % 3600 // 60
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m" if minutes else f"{seconds}s"
