"""Slack incoming-webhook notifier (``type = "slack"``), through the official slack_sdk.

The webhook URL is the secret: it is read from the environment variable the
receiver names (``webhook_url_env``) at send time, and never logged: slack_sdk
logs the URL at DEBUG level and in some error texts, so the client gets a
logger of its own that stays silent, and every error text is redacted.

slack_sdk's own retry handlers are turned off: the outbox retries with backoff
on later cycles, which keeps one flush short and the retry count in the store.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from monitor.alert.blocks import render_blocks, validate_blocks
from monitor.settings import Setting
from monitor.alert.notifiers import RETRY, SENT, Delivery, Notifier, classify_http, describe_network_error, redact, register

log = logging.getLogger(__name__)
# slack_sdk checks `logger.level <= DEBUG` itself before logging the URL; an explicit level above
# DEBUG on a non-propagating logger keeps the URL out of every log, whatever the root level is.
_SDK_LOGGER = logging.getLogger("monitor.alert.slack_sdk_client")
_SDK_LOGGER.setLevel(logging.CRITICAL + 10)
_SDK_LOGGER.propagate = False


@register("slack")
class SlackNotifier(Notifier):
    OPTIONS = (
        Setting("webhook_url_env", None, "env",
                "Name of the environment variable holding the Slack incoming-webhook URL.", required=True),
    )

    def send(self, message: dict[str, Any], *, idempotency_key: str, now: dt.datetime) -> Delivery:
        url = self.secret("webhook_url_env")
        if url is None:
            return self.missing_env("webhook_url_env")
        if not url.startswith(("https://", "http://")):
            return Delivery(RETRY, error=f"environment variable {self.receiver.options['webhook_url_env']} "
                                         "does not hold an http(s) URL")
        try:
            from slack_sdk.webhook import WebhookClient
        except ImportError:  # pragma: no cover - slack_sdk is a dependency; the hint is for broken installs
            return Delivery(RETRY, error="slack_sdk is not installed; run `pip install slack_sdk`")
        text, blocks = render_blocks(message, max_alerts=self.receiver.max_alerts)
        problems = validate_blocks(blocks)
        if problems:  # a renderer bug must not cost the alert: send the plain text instead
            log.error("Block Kit for %s breaks Slack limits (%s); sending text only", idempotency_key, problems[0])
            blocks = None
        client = WebhookClient(url=url, timeout=self.receiver.timeout.total_seconds(), logger=_SDK_LOGGER,
                               retry_handlers=[])
        try:
            response = client.send(text=text, blocks=blocks, unfurl_links=False, unfurl_media=False)
        except Exception as exc:  # noqa: BLE001 - connection refused, timeout, DNS...: all transient
            return Delivery(RETRY, error=redact(describe_network_error(exc), [url]))
        body = response.body or ""
        if 200 <= response.status_code < 300:
            return Delivery(SENT, status_code=response.status_code)
        headers = {k.lower(): v for k, v in dict(response.headers or {}).items()}
        delivery = classify_http(response.status_code, body, headers.get("retry-after"), now=now)
        return Delivery(delivery.outcome, status_code=delivery.status_code,
                        error=redact(delivery.error or "", [url]), retry_after=delivery.retry_after)
