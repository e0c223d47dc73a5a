"""Alerts that will never arrive are reported, so a lost alert is never silent.

An outbox message is lost when it failed for good: the receiver rejected it, or
every attempt failed for ``give_up_after`` (``monitor.alert.outbox``). After each
delivery the alert cycle calls ``report_lost``: a receiver that lost messages
opens (or refreshes) the ``alert_lost`` meta-alert for that receiver, naming
them, which reaches the toolkit's owner (``[scheduler] owner_receiver``) and
``monitor status``; a receiver that delivered again without losing one resolves
it. ``monitor run`` exits non-zero when its cycle lost one (``AlertCycleResult.lost``).
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Iterable

from monitor.alert.meta import MetaAlerts, meta_alert
from monitor.alert.outbox import FlushResult, OutboxEntry
from monitor.errors import ConfigError
from monitor.store import Store

log = logging.getLogger(__name__)

KIND = "alert_lost"


def describe_lost(entries: Iterable[OutboxEntry]) -> list[str]:
    """One line per lost message: receiver, what it said, its id and why it was lost."""
    return [f"{e.receiver}: {e.summary!r} (message {e.message_id}): {e.last_error}" for e in entries]


def report_lost(store: Store, config, flush: FlushResult, *, now: dt.datetime) -> None:
    """Raise ``alert_lost`` per receiver that lost messages in ``flush``; resolve it for those that delivered."""
    lost: dict[str, list[OutboxEntry]] = {}
    for entry in flush.failed:
        lost.setdefault(entry.receiver, []).append(entry)
    delivered = {e.receiver for e in flush.sent} - set(lost)
    if not lost and not delivered:
        return
    try:
        meta = MetaAlerts(store, config, receiver=_owner_receiver(config))
    except Exception as exc:  # noqa: BLE001 - a bad [scheduler] section must not hide the loss: keep it in the store
        log.warning("alert_lost meta-alert kept in the store only (owner receiver unusable: %s)", exc)
        meta = MetaAlerts(store, config, receiver=None)
    for receiver, entries in lost.items():
        first = entries[0]
        message = (f"{len(entries)} message(s) to receiver {receiver} will never arrive; first: {first.summary!r}: "
                   f"{first.last_error}" + (f" (and {len(entries) - 1} more)" if len(entries) > 1 else ""))
        meta.raise_(meta_alert(KIND, receiver, message, message_ids=[e.message_id for e in entries],
                               summaries=[e.summary for e in entries]), now)
    if delivered and meta.refresh() & {f"{KIND}:{r}" for r in delivered}:
        for receiver in sorted(delivered):
            meta.resolve(KIND, receiver, now, resolution=f"{receiver} delivered messages again")
    meta.flush(now)


def _owner_receiver(config) -> str | None:
    """``[scheduler] owner_receiver`` of a project config; None for an AlertConfig alone."""
    if not hasattr(config, "section"):
        return None
    # Read here rather than through the scheduler's settings: alerting sits below the scheduler.
    value = config.section("scheduler").get("owner_receiver")
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(f"[scheduler] owner_receiver must be a non-empty string, got {value!r}")
    return value
