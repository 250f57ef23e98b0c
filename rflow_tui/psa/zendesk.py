"""Zendesk Support over its REST API (``/api/v2``): the internal-IT desk's adapter.

Chosen over ServiceNow because its API is small and stable (one PUT carries a private
comment and a status), API tokens need no OAuth dance, and cursor paging is uniform.
Auth is ``email/token:TOKEN``. The queue is the search export (``/api/v2/search/export``,
cursor paged by ``page[size]``/``page[after]``) of unsolved tickets in the configured
group (``board``); a note is a private comment (``comment.public = false``) by
``PUT /api/v2/tickets/{id}``, its ``body`` plain text, never HTML.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from rflow_tui.psa.base import PsaAuthError, PsaNote, PsaTicket, psa_time, with_marker
from rflow_tui.psa.http import HttpAdapter, PsaHttp, shared_options

CLOSED = frozenset({"solved", "closed"})


def _quoted(value: str) -> str:
    return '"' + value.replace('"', "") + '"'


class ZendeskAdapter(HttpAdapter):
    name = "zendesk"

    def __init__(
        self,
        *,
        api_url: str,
        email: str,
        token: str,
        board: str = "",
        note_visibility: str = "internal",
        timeout: float = 15.0,
        max_concurrency: int = 4,
        max_retry_wait: float = 30.0,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.board = board
        self.public = note_visibility == "public"
        self.http = PsaHttp(
            self.api_url,
            system="Zendesk",
            headers={"Accept": "application/json"},
            auth=(f"{email}/token", token),
            timeout=timeout,
            max_concurrency=max_concurrency,
            max_retry_wait=max_retry_wait,
        )

    @classmethod
    def from_settings(cls, settings: Any, environ: Mapping[str, str]) -> ZendeskAdapter:
        """The agent's e-mail and API token come from RFLOW_PSA_EMAIL and RFLOW_PSA_TOKEN."""
        missing = [name for name in ("RFLOW_PSA_EMAIL", "RFLOW_PSA_TOKEN") if not environ.get(name)]
        if missing:
            raise PsaAuthError(f"Zendesk needs {', '.join(missing)} in the environment (never in the config file)")
        if not settings.api_url:
            raise PsaAuthError("[psa] api_url is required for Zendesk (e.g. https://contoso.zendesk.com)")
        return cls(
            api_url=settings.api_url,
            email=environ["RFLOW_PSA_EMAIL"],
            token=environ["RFLOW_PSA_TOKEN"],
            **shared_options(settings),
        )

    def _ticket(self, row: dict[str, Any], users: Mapping[Any, str]) -> PsaTicket:
        ticket_id = str(row["id"])
        status = str(row.get("status") or "")
        return PsaTicket(
            id=ticket_id,
            subject=str(row.get("subject") or row.get("raw_subject") or ""),
            description=str(row.get("description") or ""),
            requester=users.get(row.get("requester_id"), ""),
            priority=str(row.get("priority") or ""),
            status=status,
            url=f"{self.api_url}/agent/tickets/{ticket_id}",
            updated_at=psa_time(row.get("updated_at")),
            created_at=psa_time(row.get("created_at")),
            closed=status in CLOSED,
        )

    async def whoami(self) -> str:
        user = (await self.http.request("GET", "api/v2/users/me")).json().get("user") or {}
        if user.get("id") is None:  # bad credentials can come back as the anonymous user
            raise PsaAuthError("Zendesk did not accept the e-mail and token (it answered as the anonymous user)")
        return f"Zendesk: {user.get('name', '')} <{user.get('email', '')}> ({user.get('role', '')})"

    async def _search(self, query: str, page_size: int) -> AsyncIterator[PsaTicket]:
        if self.board:
            query += f" group:{_quoted(self.board)}"
        params: dict[str, Any] = {"query": query, "filter[type]": "ticket", "page[size]": page_size}
        while True:
            body = (await self.http.request("GET", "api/v2/search/export", params=params)).json()
            users = {user.get("id"): str(user.get("name") or "") for user in body.get("users") or []}
            for row in body.get("results") or []:
                yield self._ticket(row, users)
            meta = body.get("meta") or {}
            if not meta.get("has_more") or not meta.get("after_cursor"):
                return
            params["page[after]"] = meta["after_cursor"]

    def list_queue(self, page_size: int = 100) -> AsyncIterator[PsaTicket]:
        return self._search("type:ticket status<solved", page_size)

    def changed_since(self, since: datetime, page_size: int = 100) -> AsyncIterator[PsaTicket]:
        stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return self._search(f"type:ticket updated>{stamp}", page_size)

    async def get_ticket(self, ticket_id: str) -> PsaTicket:
        body = (
            await self.http.request("GET", f"api/v2/tickets/{quote(ticket_id)}", params={"include": "users"})
        ).json()
        users = {user.get("id"): str(user.get("name") or "") for user in body.get("users") or []}
        return self._ticket(body["ticket"], users)

    async def list_notes(self, ticket_id: str) -> list[PsaNote]:
        notes: list[PsaNote] = []
        params: dict[str, Any] = {"page[size]": 100}
        while True:
            body = (await self.http.request("GET", f"api/v2/tickets/{quote(ticket_id)}/comments", params=params)).json()
            notes += [
                PsaNote(id=str(c.get("id")), text=str(c.get("plain_body") or c.get("body") or ""))
                for c in body.get("comments") or []
            ]
            meta = body.get("meta") or {}
            if not meta.get("has_more") or not meta.get("after_cursor"):
                return notes
            params["page[after]"] = meta["after_cursor"]

    async def post_note(self, ticket_id: str, text: str, idempotency_key: str) -> PsaNote:
        marked = with_marker(text, idempotency_key)
        payload = {"ticket": {"comment": {"body": marked, "public": self.public}}}
        body = (await self.http.request("PUT", f"api/v2/tickets/{quote(ticket_id)}", json=payload)).json()
        events = (body.get("audit") or {}).get("events") or []
        comment_id = next((str(e.get("id")) for e in events if e.get("type") == "Comment"), "")
        return PsaNote(id=comment_id, text=marked)

    async def set_status(self, ticket_id: str, status: str) -> None:
        await self.http.request("PUT", f"api/v2/tickets/{quote(ticket_id)}", json={"ticket": {"status": status}})
