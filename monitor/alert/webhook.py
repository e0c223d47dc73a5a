"""Generic JSON webhook notifier (``type = "webhook"``) with an HMAC-SHA256 signature.

The body is the message itself (schema ``monitor.alert/v1`` in docs/alerts.md).
Headers:

* ``Idempotency-Key``: the message id, the same on every attempt of one message.
  A receiver that stores the keys it has seen turns our at-least-once delivery
  into exactly-once processing (a crash after the POST but before we record it
  means the message is sent again, with the same key).
* ``X-Monitor-Timestamp``: unix seconds of the attempt.
* ``X-Monitor-Signature``: ``sha256=`` + hex HMAC-SHA256 of
  ``"{timestamp}." + raw body`` with the shared secret, so the receiver can
  check the sender and reject replays of old timestamps.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import urllib.error
import urllib.request
from typing import Any

from monitor.settings import Setting
from monitor.alert.notifiers import RETRY, Delivery, Notifier, classify_http, describe_network_error, redact, register

SIGNATURE_HEADER = "X-Monitor-Signature"
TIMESTAMP_HEADER = "X-Monitor-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value; receivers recompute it and compare with hmac.compare_digest."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, timestamp, body), signature or "")


@register("webhook")
class WebhookNotifier(Notifier):
    OPTIONS = (
        Setting("url_env", None, "env", "Name of the environment variable holding the endpoint URL.", required=True),
        Setting("secret_env", None, "env",
                "Name of the environment variable holding the HMAC-SHA256 signing secret.", required=True),
    )

    def send(self, message: dict[str, Any], *, idempotency_key: str, now: dt.datetime) -> Delivery:
        url, secret = self.secret("url_env"), self.secret("secret_env")
        if url is None:
            return self.missing_env("url_env")
        if secret is None:
            return self.missing_env("secret_env")
        if not url.startswith(("https://", "http://")):
            return Delivery(RETRY, error=f"environment variable {self.receiver.options['url_env']} "
                                         "does not hold an http(s) URL")
        body = json.dumps(message, sort_keys=True, separators=(",", ":"), default=str).encode()
        moment = now if now.tzinfo else now.replace(tzinfo=dt.timezone.utc)
        timestamp = str(int(moment.timestamp()))
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json",
            "User-Agent": "monitor-alerts/1",
            IDEMPOTENCY_HEADER: idempotency_key,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(secret, timestamp, body),
        })
        try:
            with urllib.request.urlopen(request, timeout=self.receiver.timeout.total_seconds()) as response:
                status, text, retry_after = response.status, response.read(2048).decode(errors="replace"), None
        except urllib.error.HTTPError as exc:
            status, retry_after = exc.code, exc.headers.get("Retry-After")
            text = exc.read(2048).decode(errors="replace")
        except Exception as exc:  # noqa: BLE001 - refused, timeout, DNS: transient
            return Delivery(RETRY, error=redact(describe_network_error(exc), [url, secret]))
        delivery = classify_http(status, text, retry_after, now=now)
        return Delivery(delivery.outcome, status_code=delivery.status_code,
                        error=redact(delivery.error, [url, secret]) if delivery.error else None,
                        retry_after=delivery.retry_after)
