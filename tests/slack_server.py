"""A real HTTP server on 127.0.0.1 that behaves like Slack's incoming webhook (and a webhook receiver).

Tests script its answers: 200 ``ok``, 400 ``invalid_blocks``, 429 with
Retry-After, 500, slow answers (to trip a short client timeout); ``stop()``
closes the port so clients get "connection refused", and ``start()`` brings it
back on the same port. As a webhook receiver it verifies the HMAC signature
and dedups on the idempotency key, like a well-behaved consumer would.
"""
from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SLACK_PATH = "/services/T0000/B0000/XXXXSECRETTOKEN"


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: str = "ok"
    headers: dict = field(default_factory=dict)
    delay: float = 0.0


OK = Reply(200, "ok")
INVALID_BLOCKS = Reply(400, "invalid_blocks")
SERVER_ERROR = Reply(500, "internal_error")


def rate_limited(seconds: int) -> Reply:
    return Reply(429, "rate_limited", {"Retry-After": str(seconds)})


def slow(delay: float) -> Reply:
    return Reply(200, "ok", delay=delay)


@dataclass
class Request:
    path: str
    headers: dict
    raw: bytes
    status: int  # what the server answered

    @property
    def json(self) -> dict:
        return json.loads(self.raw)


class FakeEndpoint:
    def __init__(self, *, secret: str | None = None):
        self.secret = secret
        self.requests: list[Request] = []
        self.logical: dict[str, dict] = {}  # idempotency key -> first accepted body (webhook receiver view)
        self.bad_signatures = 0
        self._script: deque[Reply] = deque()
        self.default = OK
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        with socket.socket() as probe:  # an ephemeral port we can close and re-open later
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{SLACK_PATH}"

    # -- scripting ---------------------------------------------------------------------------------
    def reply(self, *replies: Reply) -> None:
        """Answer the next requests with these, then fall back to ``default``."""
        with self._lock:
            self._script.extend(replies)

    def accepted(self) -> list[Request]:
        return [r for r in self.requests if 200 <= r.status < 300]

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> "FakeEndpoint":
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server API
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with endpoint._lock:
                    reply = endpoint._script.popleft() if endpoint._script else endpoint.default
                if reply.delay:
                    time.sleep(reply.delay)
                status = reply.status
                if endpoint.secret is not None and 200 <= status < 300:
                    status = endpoint._receive_webhook(self.headers, raw) or status
                with endpoint._lock:
                    endpoint.requests.append(Request(self.path, dict(self.headers), raw, status))
                body = reply.body.encode() if status == reply.status else b"bad signature"
                try:
                    self.send_response(status)
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def log_message(self, *args):  # keep test output clean
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _receive_webhook(self, headers, raw: bytes) -> int | None:
        """Verify the signature and dedup on the idempotency key; None = accepted."""
        from monitor.alert.webhook import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify

        if not verify(self.secret, headers.get(TIMESTAMP_HEADER, ""), raw, headers.get(SIGNATURE_HEADER, "")):
            self.bad_signatures += 1
            return 401
        key = headers.get(IDEMPOTENCY_HEADER)
        with self._lock:
            self.logical.setdefault(key, json.loads(raw))
        return None


def serving(monkeypatch, env: str, *, default: Reply | None = None):
    """A started endpoint whose URL is in ``$env`` (the notifier's webhook variable), stopped
    afterwards: the body of each test module's ``slack`` fixture (``yield from serving(...)``)."""
    endpoint = FakeEndpoint().start()
    if default is not None:
        endpoint.default = default
    monkeypatch.setenv(env, endpoint.url)
    yield endpoint
    endpoint.stop()
