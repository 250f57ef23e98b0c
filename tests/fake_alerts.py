"""Loopback receivers for escalation alerts: a webhook (apprise's ``json://``) and an SMTP
server (``mailto://``), each recording what reached it, with faults to inject."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: dict[str, Any]
    answered: int

    @property
    def message(self) -> str:
        return str(self.body.get("message", ""))

    @property
    def key(self) -> str | None:
        return self.headers.get("Idempotency-Key")


@dataclass
class Plan:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to hold the answer after the request was read (a timeout after receipt)


class FakeWebhook:
    """``json://`` at 127.0.0.1. ``plan(...)`` queues the next answers; then ``decide()``'s
    (a benchmark's random faults), else 200s."""

    def __init__(self, decide: Callable[[], Plan] | None = None) -> None:
        self.decide = decide
        self.received: list[Received] = []
        self._plans: deque[Plan] = deque()
        self._lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with hook._lock:
                    plan = hook._next()
                    hook.received.append(Received(dict(self.headers), body, plan.status))
                if plan.delay:
                    time.sleep(plan.delay)
                try:
                    self.send_response(plan.status)
                    for name, value in plan.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender stopped waiting (a held answer): what it sent is recorded

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def _next(self) -> Plan:
        if self._plans:
            return self._plans.popleft()
        return self.decide() if self.decide else Plan()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, path: str = "hook") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def plan(self, *plans: Plan) -> None:
        self._plans.extend(plans)

    @property
    def accepted(self) -> list[Received]:
        """What the receiver took in and answered 2xx: the alerts that went out."""
        return [r for r in self.received if 200 <= r.answered < 300]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class FakeSmtp:
    """An SMTP server at 127.0.0.1 (aiosmtpd) keeping each message it accepts."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[Any] = []
        outer = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                from email import message_from_bytes, policy

                outer.messages.append(message_from_bytes(envelope.content, policy=policy.default))
                return "250 OK"

        self.port = _free_port()  # aiosmtpd's start checks the port it was given by connecting to it
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def url(self) -> str:
        return f"mailto://127.0.0.1:{self.port}?from=rflow@desk.test&to=oncall@desk.test&mode=insecure"

    def close(self) -> None:
        self.controller.stop()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
