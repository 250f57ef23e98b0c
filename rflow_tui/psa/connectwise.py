"""ConnectWise PSA (Manage) over its REST API (``/v4_6_release/apis/3.0``).

Basic auth is ``company+publickey:privatekey`` with the integration's ``clientId``
header. The queue is ``GET /service/tickets`` filtered by ``conditions`` on the board
and ``closedFlag``, paged by ``page``/``pageSize`` in id order (stable while new tickets
arrive). A note is ``POST /service/tickets/{id}/notes`` with ``internalAnalysisFlag``
(internal, the default) or ``detailDescriptionFlag`` (``note_visibility = "public"``);
a status change is a JSON Patch on ``status`` by name (the board's own status names).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from rflow_tui.psa.base import PsaAuthError, PsaNote, PsaTicket, psa_time, with_marker
from rflow_tui.psa.http import HttpAdapter, PsaHttp, shared_options

NOTES_PAGE = 100


def _quoted(value: str) -> str:
    """A string literal for ``conditions``: double quotes, with backslash and quote escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _name(value: Any) -> str:
    return str(value.get("name") or "") if isinstance(value, dict) else ""


class ConnectWiseAdapter(HttpAdapter):
    name = "connectwise"

    def __init__(
        self,
        *,
        api_url: str,
        company: str,
        public_key: str,
        private_key: str,
        client_id: str,
        board: str,
        note_visibility: str = "internal",
        timeout: float = 15.0,
        max_concurrency: int = 4,
        max_retry_wait: float = 30.0,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.company = company
        self.board = board
        self.public = note_visibility == "public"
        self.http = PsaHttp(
            self.api_url,
            system="ConnectWise",
            headers={"clientId": client_id, "Accept": "application/json"},
            auth=(f"{company}+{public_key}", private_key),
            timeout=timeout,
            max_concurrency=max_concurrency,
            max_retry_wait=max_retry_wait,
        )

    @classmethod
    def from_settings(cls, settings: Any, environ: Mapping[str, str]) -> ConnectWiseAdapter:
        """Keys come from the environment only (RFLOW_PSA_PUBLIC_KEY, _PRIVATE_KEY, _CLIENT_ID)."""
        names = ("RFLOW_PSA_PUBLIC_KEY", "RFLOW_PSA_PRIVATE_KEY", "RFLOW_PSA_CLIENT_ID")
        missing = [name for name in names if not environ.get(name)]
        if missing:
            raise PsaAuthError(f"ConnectWise needs {', '.join(missing)} in the environment (never in the config file)")
        for key in ("api_url", "company", "board"):
            if not getattr(settings, key):
                raise PsaAuthError(f"[psa] {key} is required for ConnectWise")
        return cls(
            api_url=settings.api_url,
            company=settings.company,
            public_key=environ["RFLOW_PSA_PUBLIC_KEY"],
            private_key=environ["RFLOW_PSA_PRIVATE_KEY"],
            client_id=environ["RFLOW_PSA_CLIENT_ID"],
            **shared_options(settings),
        )

    def link(self, ticket_id: str) -> str:
        """The ticket in Manage's web UI (the API host without its ``api-`` prefix)."""
        parts = urlsplit(self.api_url)
        host = parts.netloc.removeprefix("api-")
        return (
            f"{parts.scheme}://{host}/v4_6_release/services/system_io/Service/fv_sr100_request.rails"
            f"?service_recid={quote(ticket_id)}&companyName={quote(self.company)}"
        )

    def _ticket(self, row: dict[str, Any]) -> PsaTicket:
        info = row.get("_info") if isinstance(row.get("_info"), dict) else {}
        ticket_id = str(row["id"])
        return PsaTicket(
            id=ticket_id,
            subject=str(row.get("summary") or ""),
            description=str(row.get("initialDescription") or ""),
            requester=str(row.get("contactName") or _name(row.get("contact")) or _name(row.get("company"))),
            priority=_name(row.get("priority")),
            status=_name(row.get("status")),
            url=self.link(ticket_id),
            updated_at=psa_time(info.get("lastUpdated")) if info else None,
            created_at=psa_time(info.get("dateEntered")) if info else None,
            closed=bool(row.get("closedFlag")),
        )

    async def whoami(self) -> str:
        info = (await self.http.request("GET", "system/info")).json()
        version = info.get("version", "?") if isinstance(info, dict) else "?"
        return f"ConnectWise {version}, company {self.company}, board {self.board}"

    async def _pages(self, conditions: str, page_size: int) -> AsyncIterator[PsaTicket]:
        page = 1
        while True:
            params = {"conditions": conditions, "orderBy": "id asc", "page": page, "pageSize": page_size}
            rows = (await self.http.request("GET", "service/tickets", params=params)).json()
            for row in rows:
                yield self._ticket(row)
            if len(rows) < page_size:
                return
            page += 1

    def list_queue(self, page_size: int = 100) -> AsyncIterator[PsaTicket]:
        return self._pages(f"board/name={_quoted(self.board)} and closedFlag=false", page_size)

    def changed_since(self, since: datetime, page_size: int = 100) -> AsyncIterator[PsaTicket]:
        stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return self._pages(f"board/name={_quoted(self.board)} and lastUpdated > [{stamp}]", page_size)

    async def get_ticket(self, ticket_id: str) -> PsaTicket:
        return self._ticket((await self.http.request("GET", f"service/tickets/{quote(ticket_id)}")).json())

    async def list_notes(self, ticket_id: str) -> list[PsaNote]:
        notes: list[PsaNote] = []
        page = 1
        while True:
            params = {"page": page, "pageSize": NOTES_PAGE, "orderBy": "id asc"}
            rows = (await self.http.request("GET", f"service/tickets/{quote(ticket_id)}/notes", params=params)).json()
            notes += [PsaNote(id=str(row.get("id")), text=str(row.get("text") or "")) for row in rows]
            if len(rows) < NOTES_PAGE:
                return notes
            page += 1

    async def post_note(self, ticket_id: str, text: str, idempotency_key: str) -> PsaNote:
        body = {
            "text": with_marker(text, idempotency_key),
            "detailDescriptionFlag": self.public,
            "internalAnalysisFlag": not self.public,
            "resolutionFlag": False,
        }
        row = (await self.http.request("POST", f"service/tickets/{quote(ticket_id)}/notes", json=body)).json()
        return PsaNote(id=str(row.get("id")), text=str(row.get("text") or body["text"]))

    async def set_status(self, ticket_id: str, status: str) -> None:
        patch = [{"op": "replace", "path": "status", "value": {"name": status}}]
        await self.http.request("PATCH", f"service/tickets/{quote(ticket_id)}", json=patch)
