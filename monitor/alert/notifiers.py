"""Notifiers, registered under a string key (``type = "slack"`` in a receiver).

A notifier turns one message (the notifier-neutral dict built by
``monitor.alert.message``; its schema is the webhook payload in
docs/alerts.md) into one delivery attempt and reports a ``Delivery``:
``sent``, ``retry`` (transient: the outbox tries again later) or ``failed``
(permanent: the receiver rejected it; retrying cannot help).

Notifiers never retry by themselves and never sleep: the outbox owns retries,
backoff and ordering, so a slow endpoint cannot stall a detection cycle.
Secrets (URLs, HMAC keys) are read from the environment at send time and are
redacted from every error text a notifier returns.
"""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, Protocol

from monitor.alert.config import ReceiverConfig
from monitor.registry import NOTIFIERS
from monitor.settings import Setting

SENT, RETRY, FAILED = "sent", "retry", "failed"


@dataclass(frozen=True)
class Delivery:
    """The outcome of one attempt. ``error`` is one redacted sentence."""

    outcome: str  # sent | retry | failed
    status_code: int | None = None
    error: str | None = None
    retry_after: float | None = None  # seconds the receiver asked us to wait (HTTP 429 Retry-After)


class NotifierProtocol(Protocol):
    """What a class registered in ``NOTIFIERS`` provides (``Notifier`` below is its base)."""

    type_name: ClassVar[str]
    OPTIONS: ClassVar[tuple[Setting, ...]]

    def __init__(self, receiver: ReceiverConfig, *, env: Mapping[str, str] | None = None) -> None: ...

    def send(self, message: dict[str, Any], *, idempotency_key: str, now: dt.datetime) -> "Delivery": ...


class Notifier:
    """Base class: the constructor only stores arguments; ``send`` does the work."""

    type_name: ClassVar[str] = ""
    OPTIONS: ClassVar[tuple[Setting, ...]] = ()

    def __init__(self, receiver: ReceiverConfig, *, env: Mapping[str, str] | None = None):
        self.receiver = receiver
        self.env = env

    def send(self, message: dict[str, Any], *, idempotency_key: str, now: dt.datetime) -> Delivery:
        raise NotImplementedError

    # -- helpers for subclasses ------------------------------------------------------------------
    def secret(self, option: str) -> str | None:
        """The value of the environment variable the option names (None if unset or empty)."""
        name = self.receiver.options.get(option)
        if not name:
            return None
        value = (self.env if self.env is not None else os.environ).get(name)
        return value or None

    def missing_env(self, option: str) -> Delivery:
        # A retry, not a failure: the alert waits in the outbox until the variable is set.
        return Delivery(RETRY, error=f"environment variable {self.receiver.options.get(option)} "
                                     f"(receiver {self.receiver.name}.{option}) is not set")


def register(type_name: str):
    """Class decorator: make a notifier available as ``type = "<type_name>"``."""

    def wrap(cls: type[Notifier]) -> type[Notifier]:
        cls.type_name = type_name
        return NOTIFIERS.register(type_name)(cls)

    return wrap


def notifier_types() -> list[str]:
    return NOTIFIERS.keys_sorted()


def notifier_class(type_name: str) -> type[Notifier]:
    """The class registered as ``type_name``; UnknownKeyError (a ConfigError) listing the valid ones."""
    return NOTIFIERS.get(type_name)


def make_notifier(receiver: ReceiverConfig, *, env: Mapping[str, str] | None = None) -> Notifier:
    return notifier_class(receiver.type)(receiver, env=env)


def redact(text: str, secrets: list[str | None]) -> str:
    """Replace every secret (and a URL's path, which is the secret part of a Slack hook) by '***'."""
    from urllib.parse import urlsplit

    out = text
    for secret in secrets:
        if not secret:
            continue
        out = out.replace(secret, "***")
        try:
            path = urlsplit(secret).path
        except ValueError:
            path = ""
        if len(path) > 1:
            out = out.replace(path, "/***")
    return out


def classify_http(status: int, body: str, retry_after: str | None, *, now: dt.datetime) -> Delivery:
    """Map an HTTP answer to an outcome: 2xx sent; 408/425/429/5xx retry; other 4xx failed.

    Slack's 400 ``invalid_blocks`` / ``invalid_payload``, 403, 404 ``no_service``
    and 410 ``channel_is_archived`` are permanent: sending them again cannot succeed.
    """
    snippet = " ".join((body or "").split())[:200]
    if 200 <= status < 300:
        return Delivery(SENT, status_code=status)
    if status == 429 or status in (408, 425) or status >= 500:
        wait = _retry_after_seconds(retry_after, now=now)
        what = "rate limited" if status == 429 else "temporary error"
        return Delivery(RETRY, status_code=status, retry_after=wait,
                        error=f"HTTP {status} ({what}){': ' + snippet if snippet else ''}")
    return Delivery(FAILED, status_code=status, error=f"HTTP {status} rejected: {snippet or 'no reason given'}")


def _retry_after_seconds(value: str | None, *, now: dt.datetime) -> float | None:
    """Retry-After as seconds; the HTTP-date form is accepted too."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = now if now.tzinfo else now.replace(tzinfo=dt.timezone.utc)
    return max(0.0, (when - now).total_seconds())


def describe_network_error(exc: BaseException) -> str:
    """One sentence for a connection-level failure, without the URL."""
    import socket
    import urllib.error

    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timed out waiting for the receiver"
    if isinstance(exc, urllib.error.URLError):
        reason = exc.reason
        if isinstance(reason, (TimeoutError, socket.timeout)):
            return "timed out waiting for the receiver"
        if isinstance(reason, ConnectionRefusedError):
            return "connection refused"
        return f"network error: {reason}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (ConnectionError, OSError)):
        return f"network error: {type(exc).__name__}: {exc}"
    return f"{type(exc).__name__}: {exc}"
