"""The adapter protocol every PSA speaks to rflow through, its ticket shape and its errors.

An adapter knows one vendor's REST API and nothing of the store or the screens. The
outbox (``services/psa_outbox.py``) decides when to call it again; an adapter only says,
through the error it raises, whether a call may have reached the server (``unclear``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

MARKER_PREFIX = "rflow:outbox:"


def psa_time(value: Any) -> datetime | None:
    """An ISO 8601 time from a PSA as an aware UTC datetime (a zone-less one is UTC); None if
    it is missing or not a time."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


def marker(idempotency_key: str) -> str:
    """The line a posted note ends with, so a retry can tell the note is already there."""
    return f"[{MARKER_PREFIX}{idempotency_key}]"


def with_marker(text: str, idempotency_key: str) -> str:
    tag = marker(idempotency_key)
    return text if tag in text else f"{text.rstrip()}\n\n{tag}"


@dataclass(frozen=True)
class PsaTicket:
    """A ticket as the PSA holds it, reduced to what a desk's queue shows."""

    id: str
    subject: str
    description: str = ""
    requester: str = ""
    priority: str = ""
    status: str = ""
    url: str = ""
    updated_at: datetime | None = None
    created_at: datetime | None = None
    closed: bool = False


@dataclass(frozen=True)
class PsaNote:
    id: str
    text: str


class PsaError(Exception):
    """A PSA call that did not succeed. ``str(exc)`` is written for the person at the desk.

    ``retryable``: the same call may succeed later. ``unclear``: the request may have
    reached the server and been committed (a timeout after sending, a 5xx on a write),
    so a note must be looked for before it is posted again.
    """

    retryable = False

    def __init__(self, message: str, *, unclear: bool = False) -> None:
        super().__init__(message)
        self.unclear = unclear


class PsaAuthError(PsaError):
    """401/403: the keys are wrong, expired or lack the right; nothing is retried until fixed."""


class PsaNotFound(PsaError):
    """404: the ticket is gone upstream (deleted or merged)."""


class PsaRejected(PsaError):
    """A 4xx other than those above: the PSA refused this request as it is; repeating it will not help."""


class PsaRateLimited(PsaError):
    """429: wait ``retry_after`` seconds (the server's Retry-After) before calling again."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PsaUnavailable(PsaError):
    """5xx, a refused connection or a timeout: the PSA is down or slow; try later."""

    retryable = True


@runtime_checkable
class PsaAdapter(Protocol):
    """One PSA. Ticket ids are the PSA's own, as strings."""

    name: str

    async def whoami(self) -> str:
        """Who the keys act as (or the API's own identity line): proves the keys work."""
        ...

    def list_queue(self, page_size: int = 100) -> AsyncIterator[PsaTicket]:
        """Every open ticket of the configured board/queue, fetched a page at a time."""
        ...

    def changed_since(self, since: datetime, page_size: int = 100) -> AsyncIterator[PsaTicket]:
        """Tickets of the board changed after ``since`` (closed ones included, so a pull sees them go)."""
        ...

    async def get_ticket(self, ticket_id: str) -> PsaTicket: ...

    async def list_notes(self, ticket_id: str) -> list[PsaNote]: ...

    async def post_note(self, ticket_id: str, text: str, idempotency_key: str) -> PsaNote:
        """Post ``text`` as a note (internal unless configured), ending with ``marker(idempotency_key)``."""
        ...

    async def set_status(self, ticket_id: str, status: str) -> None: ...

    async def aclose(self) -> None: ...


async def find_marked_note(adapter: PsaAdapter, ticket_id: str, idempotency_key: str) -> PsaNote | None:
    """The note an earlier, unclear attempt may have posted, found by its marker."""
    tag = marker(idempotency_key)
    for note in await adapter.list_notes(ticket_id):
        if tag in note.text:
            return note
    return None
