"""Alerts: route, group, dedup and deliver incidents to Slack, webhooks and the console.

The product calls ``run_alert_cycle(store, config, now=...)`` once per cycle;
``flush_outbox`` delivers what is queued (retries included) without planning
anything new. Silences are managed with ``add_silence`` / ``list_silences`` /
``expire_silence`` (and ``monitor silence ...``, see ``monitor.alert.cli``).
``send_message`` sends one free-form message (the daily report digest) through
the same outbox: queued once per day and receiver, retried, never posted twice.
"""
from monitor.alert.config import AlertConfig, AlertConfigError, load_alert_config, parse_alert_config
from monitor.alert.cycle import AlertCycleResult, run_alert_cycle
from monitor.alert.notifiers import Delivery, Notifier, make_notifier, notifier_types, register
from monitor.alert.outbox import FlushResult, OutboxEntry, flush_outbox, outbox_entries, outbox_payload
from monitor.alert.send import SendError, SendResult, send_message
from monitor.alert.silences import Silence, add_silence, expire_silence, list_silences

__all__ = [
    "AlertConfig", "AlertConfigError", "AlertCycleResult", "Delivery", "FlushResult", "Notifier", "OutboxEntry",
    "SendError", "SendResult", "Silence", "add_silence", "expire_silence", "flush_outbox", "list_silences",
    "load_alert_config", "make_notifier", "notifier_types", "outbox_entries", "outbox_payload", "parse_alert_config",
    "register", "run_alert_cycle", "send_message",
]
