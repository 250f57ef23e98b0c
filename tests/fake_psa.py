"""Loopback fakes of the ConnectWise and Zendesk REST APIs: real HTTP on 127.0.0.1, in a thread.

They keep tickets and notes in memory, check credentials like the vendor does, page the
way the vendor pages, and take injected faults: a status (401, 429 with Retry-After,
500, 404), or ``hang`` seconds *after* committing a write (the client times out though
the note exists); a fault may strike only a share of matching requests (``chance``, from a
seeded generator, for the benchmark's "10 % fail"). ``latency`` slows every answer and
``peak`` is the most requests in flight at once (a cap on concurrency is seen here).
``requests`` records every request, with its time, for counting and for asserting what
was sent. Used by tests/ and bench/.
"""

from __future__ import annotations

import base64
import json
import random
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class Fault:
    method: str
    path: str  # a regex matched against the path (after the API base)
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    hang: float = 0.0  # > 0: do the request, then wait this long before answering (a timeout after commit)
    chance: float = 1.0  # the share of matching requests it strikes (times counts only those)


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    at: float = 0.0  # time.monotonic() when it arrived


def stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeApi:
    base = ""  # the API's path prefix

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.faults: list[Fault] = []
        self.requests: list[Seen] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.clock = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
        self.latency = 0.0
        self.in_flight = 0
        self.peak = 0
        self.random = random.Random(20)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{self.base}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail(self, method: str, path: str, status: int = 500, *, times: int = 1, **kwargs: Any) -> None:
        with self.lock:
            self.faults.append(Fault(method, path, status, times=times, **kwargs))

    def tick(self) -> str:
        self.clock += timedelta(seconds=1)
        return stamp(self.clock)

    def count(self, method: str, pattern: str = "") -> int:
        return sum(1 for seen in self.requests if seen.method == method and re.search(pattern, seen.path))

    # -- plumbing --------------------------------------------------------------------

    def _fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.method == method and re.fullmatch(fault.path, path) and fault.times > 0:
                    if fault.chance < 1.0 and self.random.random() >= fault.chance:
                        continue
                    fault.times -= 1
                    return fault
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body in one write: unbuffered, they go as two segments and a keep-alive
            # client waits out delayed ACK (~40 ms a request on loopback, which no PSA adds).
            wbufsize = -1

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                with api.lock:
                    api.in_flight += 1
                    api.peak = max(api.peak, api.in_flight)
                try:
                    if api.latency:
                        time.sleep(api.latency)
                    self._answer()
                finally:
                    with api.lock:
                        api.in_flight -= 1

            def _answer(self) -> None:
                parts = urlsplit(self.path)
                path = unquote(parts.path)
                if not path.startswith(api.base):
                    return self._send(404, {"message": "no such API"})
                path = path[len(api.base) :] or "/"
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                query = parse_qs(parts.query)
                with api.lock:
                    api.requests.append(Seen(self.command, path, query, dict(self.headers), body, time.monotonic()))
                fault = api._fault(self.command, path)
                if fault is not None and not fault.hang:
                    return self._send(fault.status, {"message": f"injected {fault.status}"}, fault.headers)
                if not api.authorized(self.headers):
                    return self._send(401, {"message": "invalid credentials"})
                with api.lock:
                    status, payload = api.route(self.command, path, query, body)
                if fault is not None:
                    time.sleep(fault.hang)
                self._send(status, payload)

            def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout): what was committed stays

            do_GET = do_POST = do_PUT = do_PATCH = _serve

        return Handler

    def authorized(self, headers: Any) -> bool:
        raise NotImplementedError

    def route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        raise NotImplementedError


def _basic(headers: Any) -> str:
    value = headers.get("Authorization") or ""
    if not value.startswith("Basic "):
        return ""
    return base64.b64decode(value[6:]).decode()


class FakeConnectWise(FakeApi):
    base = "/v4_6_release/apis/3.0"

    def __init__(self, *, company: str = "contoso", public: str = "pub", private: str = "priv", client_id: str = "cid"):
        super().__init__()
        self.login = f"{company}+{public}:{private}"
        self.client_id = client_id
        self.tickets: dict[int, dict[str, Any]] = {}
        self.notes: dict[int, list[dict[str, Any]]] = {}
        self.next_note = 1

    def add_ticket(self, ticket_id: int, summary: str, *, board: str = "Help Desk", closed: bool = False, **extra: Any):
        with self.lock:
            self.tickets[ticket_id] = {
                "id": ticket_id,
                "summary": summary,
                "board": {"id": 1, "name": board},
                "status": {"id": 1, "name": "New"},
                "priority": {"id": 3, "name": "Priority 3 - Normal"},
                "contactName": extra.pop("contact", "Bob Requester"),
                "company": {"identifier": "Acme", "name": "Acme Ltd"},
                "closedFlag": closed,
                "initialDescription": extra.pop("description", ""),
                "_info": {"lastUpdated": self.tick(), "dateEntered": stamp(self.clock)},
                **extra,
            }
            self.notes.setdefault(ticket_id, [])

    def authorized(self, headers: Any) -> bool:
        return _basic(headers) == self.login and headers.get("clientId") == self.client_id

    def change_ticket(self, ticket_id: int, **fields: Any) -> None:
        """What a person does in Manage: the fields change, and so does lastUpdated."""
        with self.lock:
            self.tickets[ticket_id].update(fields)
            self.tickets[ticket_id]["_info"]["lastUpdated"] = self.tick()

    def delete_ticket(self, ticket_id: int) -> None:
        with self.lock:
            del self.tickets[ticket_id]

    def _matches(self, ticket: dict[str, Any], conditions: str) -> bool:
        board = re.search(r'board/name="((?:[^"\\]|\\.)*)"', conditions)
        if board and ticket["board"]["name"] != re.sub(r"\\(.)", r"\1", board.group(1)):
            return False
        if "closedFlag=false" in conditions and ticket["closedFlag"]:
            return False
        since = re.search(r"lastUpdated > \[([^\]]+)\]", conditions)
        return not (since and ticket["_info"]["lastUpdated"] <= since.group(1))

    def route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        if method == "GET" and path == "/system/info":
            return 200, {"version": "v2026.1", "isCloud": True}
        if method == "GET" and path == "/service/tickets":
            page, size = int(query.get("page", ["1"])[0]), int(query.get("pageSize", ["25"])[0])
            conditions = query.get("conditions", [""])[0]
            rows = [t for _, t in sorted(self.tickets.items()) if self._matches(t, conditions)]
            return 200, rows[(page - 1) * size : page * size]
        found = re.fullmatch(r"/service/tickets/(\d+)(/notes)?", path)
        if not found:
            return 404, {"code": "NotFound", "message": "no such route"}
        ticket_id = int(found.group(1))
        ticket = self.tickets.get(ticket_id)
        if ticket is None:
            return 404, {"code": "NotFound", "message": f"Ticket ID {ticket_id} not found"}
        if found.group(2):
            notes = self.notes[ticket_id]
            if method == "GET":
                page, size = int(query.get("page", ["1"])[0]), int(query.get("pageSize", ["25"])[0])
                return 200, notes[(page - 1) * size : page * size]
            if method == "POST":
                note = {"id": self.next_note, "ticketId": ticket_id, **body}
                self.next_note += 1
                notes.append(note)
                return 201, note
        elif method == "GET":
            return 200, ticket
        elif method == "PATCH":
            for op in body:
                if op["op"] == "replace" and op["path"] == "status":
                    ticket["status"] = {"id": 9, "name": op["value"]["name"]}
            ticket["_info"]["lastUpdated"] = self.tick()
            return 200, ticket
        return 405, {"message": "method not allowed"}


class FakeZendesk(FakeApi):
    base = ""

    def __init__(self, *, email: str = "agent@contoso.test", token: str = "tok"):
        super().__init__()
        self.login = f"{email}/token:{token}"
        self.email = email
        self.tickets: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.users = {7: {"id": 7, "name": "Bob Requester"}}
        self.groups = {"IT Support": 11, "Facilities": 12}
        self.next_comment = 100

    def add_ticket(
        self, ticket_id: int, subject: str, *, group: str = "IT Support", status: str = "open", **extra: Any
    ):
        with self.lock:
            self.tickets[ticket_id] = {
                "id": ticket_id,
                "subject": subject,
                "description": extra.pop("description", ""),
                "status": status,
                "priority": "normal",
                "requester_id": 7,
                "group_id": self.groups[group],
                "created_at": self.tick(),
                "updated_at": stamp(self.clock),
                **extra,
            }
            self.comments.setdefault(ticket_id, [])

    def authorized(self, headers: Any) -> bool:
        return _basic(headers) == self.login

    def _matches(self, ticket: dict[str, Any], q: str) -> bool:
        group = re.search(r'group:"([^"]*)"', q)
        if group and ticket["group_id"] != self.groups.get(group.group(1)):
            return False
        if "status<solved" in q and ticket["status"] in ("solved", "closed"):
            return False
        since = re.search(r"updated>(\S+)", q)
        return not (since and ticket["updated_at"] <= since.group(1))

    @staticmethod
    def _page(rows: list[Any], query: dict[str, list[str]], key: str) -> dict[str, Any]:
        size = int(query.get("page[size]", ["100"])[0])
        after = query.get("page[after]", [""])[0]
        start = int(base64.b64decode(after).decode()) if after else 0
        chunk = rows[start : start + size]
        more = start + size < len(rows)
        cursor = base64.b64encode(str(start + size).encode()).decode() if more else None
        return {key: chunk, "meta": {"has_more": more, "after_cursor": cursor, "before_cursor": None}}

    def route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        if method == "GET" and path == "/api/v2/users/me":
            return 200, {"user": {"id": 1, "name": "Agent", "email": self.email, "role": "agent"}}
        if method == "GET" and path == "/api/v2/search/export":
            if query.get("filter[type]") != ["ticket"]:
                return 400, {"error": "InvalidParameter", "description": "filter[type] is required"}
            q = query.get("query", [""])[0]
            rows = [t for _, t in sorted(self.tickets.items()) if self._matches(t, q)]
            return 200, self._page(rows, query, "results")
        found = re.fullmatch(r"/api/v2/tickets/(\d+)(/comments)?", path)
        if not found:
            return 404, {"error": "InvalidEndpoint"}
        ticket_id = int(found.group(1))
        ticket = self.tickets.get(ticket_id)
        if ticket is None:
            return 404, {"error": "RecordNotFound", "description": "Not found"}
        if found.group(2) and method == "GET":
            return 200, self._page(self.comments[ticket_id], query, "comments")
        if method == "GET":
            return 200, {"ticket": ticket, "users": [self.users[ticket["requester_id"]]]}
        if method == "PUT":
            change = body["ticket"]
            events: list[dict[str, Any]] = []
            if "comment" in change:
                comment = {"id": self.next_comment, "type": "Comment", **change["comment"]}
                comment["plain_body"] = comment["body"]
                self.next_comment += 1
                self.comments[ticket_id].append(comment)
                events.append({"id": comment["id"], "type": "Comment", "public": comment["public"]})
            if "status" in change:
                ticket["status"] = change["status"]
            ticket["updated_at"] = self.tick()
            return 200, {"ticket": ticket, "audit": {"events": events}}
        return 405, {"error": "method not allowed"}


CW_ENV = {"RFLOW_PSA_PUBLIC_KEY": "pub", "RFLOW_PSA_PRIVATE_KEY": "priv", "RFLOW_PSA_CLIENT_ID": "cid"}
"""The fake ConnectWise's keys, as the environment gives them to the adapter."""


def connectwise_adapter(api: FakeConnectWise, **settings: Any) -> Any:
    """The real ConnectWise adapter pointed at ``api`` (board "Help Desk"), retrying fast."""
    from rflow_tui.config import PsaSettings
    from rflow_tui.psa.registry import make_adapter

    base = {"kind": "connectwise", "api_url": api.url, "company": "contoso", "board": "Help Desk"}
    adapter = make_adapter(PsaSettings(**{**base, **settings}), CW_ENV)
    adapter.http.backoff = 0.01
    return adapter
