"""In from the PSA: the configured board's open tickets into the desk's queue.

A pulled ticket is keyed by the PSA's own id (``ticket_id``, ``ticket_kind = "psa"``,
``psa_system`` the adapter's name), so a ticket pulled twice is one ticket. A page is
fetched outside any transaction (a slow PSA never holds the desk's write lock) and then
written in one: new tickets inserted, changed ones updated in place (walks point at the
ticket id, so a tech's walks are never touched), unchanged ones skipped. An id the desk
already holds as an internal ticket or another PSA's is left alone and reported.

A full pull (``pull``) also closes, as ``resolved``, the desk's tickets of this PSA that are
no longer in the open queue (closed, moved off the board or deleted upstream: the PSA is
the system of record). ``pull_changes`` asks only for what changed since the newest
change already held, which ``rflow psa pull --watch`` polls.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rflow_tui.db import write_transaction
from rflow_tui.domain.enums import OPEN_TICKET_STATUSES, TicketKind, TicketStatus
from rflow_tui.models import Ticket, User, utcnow
from rflow_tui.psa.base import PsaAdapter, PsaError, PsaRateLimited, PsaTicket
from rflow_tui.services import audit
from rflow_tui.services.access import Need, authorize
from rflow_tui.services.tickets import FIELD_LIMITS
from rflow_tui.text import clean

PAGE = 100
CHUNK = 1000  # ids per IN (...) when closing what left the queue
OVERLAP = timedelta(seconds=1)  # a PSA's change times are to the second: ask again for the last one
MAX_CONFLICTS = 20  # ids named in the report (the count is always whole)

Progress = Callable[[int], None]  # called with the number of tickets read so far


@dataclass
class Pulled:
    new: int = 0
    updated: int = 0
    skipped: int = 0  # unchanged, or an id the desk holds as another kind of ticket
    closed: int = 0  # no longer open upstream: resolved on the desk
    conflicts: list[str] = field(default_factory=list)  # ids held by an internal ticket or another PSA

    @property
    def changed(self) -> int:
        return self.new + self.updated + self.closed

    def as_row(self) -> dict[str, Any]:
        return {
            "new": self.new,
            "updated": self.updated,
            "skipped": self.skipped,
            "closed": self.closed,
            "conflicts": self.conflicts,
        }


def _line(value: str, limit: int) -> str:
    return clean(value.replace("\x00", ""), single_line=True)[:limit]


def _fields(ticket: PsaTicket) -> dict[str, Any]:
    """What the desk stores of a PSA ticket: untrusted text, cleaned and cut to the columns."""
    url = _line(ticket.url, 1000)
    return {
        "subject": _line(ticket.subject, FIELD_LIMITS["subject"]) or "(no subject)",
        "body": clean(ticket.description.replace("\x00", ""))[: FIELD_LIMITS["body"]],
        "requester": _line(ticket.requester, FIELD_LIMITS["requester"]),
        "priority": _line(ticket.priority, 80),
        "psa_url": url if url.startswith(("https://", "http://")) else None,
        "psa_updated_at": ticket.updated_at,
    }


async def _pages(tickets: AsyncIterator[PsaTicket], size: int) -> AsyncIterator[list[PsaTicket]]:
    page: list[PsaTicket] = []
    async for ticket in tickets:
        page.append(ticket)
        if len(page) >= size:
            yield page
            page = []
    if page:
        yield page


async def _apply(db: AsyncSession, actor: User, system: str, page: list[PsaTicket], report: Pulled) -> None:
    """One page of the PSA's tickets onto the desk, in one transaction."""
    by_id: dict[str, PsaTicket] = {}
    for ticket in page:
        ticket_id = _line(ticket.id, FIELD_LIMITS["ticket_id"] + 1)
        if not ticket_id or len(ticket_id) > FIELD_LIMITS["ticket_id"]:
            report.skipped += 1
            continue
        by_id[ticket_id] = ticket  # the same id twice in one answer: the later wins
    async with write_transaction(db):
        await authorize(db, actor, Need.MEMBER, "pull tickets from the PSA")
        held = {
            row.ticket_id: row
            for row in await db.exec(
                select(Ticket).where(Ticket.account_id == actor.account_id, col(Ticket.ticket_id).in_(list(by_id)))
            )
        }
        now = utcnow()
        new: list[dict[str, Any]] = []
        for ticket_id, ticket in by_id.items():
            data = _fields(ticket)
            status = TicketStatus.RESOLVED if ticket.closed else TicketStatus.OPEN
            row = held.get(ticket_id)
            if row is None:
                if not ticket.closed:
                    created = ticket.created_at or now
                    new.append(
                        {
                            **data,
                            "account_id": actor.account_id,
                            "ticket_id": ticket_id,
                            "ticket_kind": TicketKind.PSA.value,
                            "psa_system": system,
                            "category": "",
                            "status": status.value,
                            "created_at": min(created, now),
                            "updated_at": now,
                        }
                    )
                else:
                    report.skipped += 1
                continue
            if row.ticket_kind != TicketKind.PSA or row.psa_system != system:
                report.skipped += 1
                if len(report.conflicts) < MAX_CONFLICTS:
                    report.conflicts.append(ticket_id)
                continue
            # A walk's in_progress stays as it is while the ticket is open upstream.
            keep_status = row.status in OPEN_TICKET_STATUSES and not ticket.closed
            changed = {key: value for key, value in data.items() if getattr(row, key) != value}
            if not keep_status and row.status != status:
                changed["status"] = status.value
            if not changed:
                report.skipped += 1
                continue
            for key, value in changed.items():
                setattr(row, key, value)
            row.updated_at = now
            db.add(row)
            if changed.get("status") == TicketStatus.RESOLVED:
                report.closed += 1
            else:
                report.updated += 1
        if new:
            await (await db.connection()).execute(insert(Ticket), new)
            report.new += len(new)


async def _close_the_rest(db: AsyncSession, actor: User, system: str, seen: set[str], report: Pulled) -> None:
    """The desk's open tickets of this PSA that a whole pull did not see: closed upstream."""
    async with write_transaction(db):
        await authorize(db, actor, Need.MEMBER, "pull tickets from the PSA")
        open_ids = await db.exec(
            select(Ticket.ticket_id).where(
                Ticket.account_id == actor.account_id,
                Ticket.ticket_kind == TicketKind.PSA,
                Ticket.psa_system == system,
                col(Ticket.status).in_(OPEN_TICKET_STATUSES),
            )
        )
        gone = sorted(set(open_ids) - seen)
        now = utcnow()
        for start in range(0, len(gone), CHUNK):
            chunk = gone[start : start + CHUNK]
            await db.exec(
                update(Ticket)
                .where(col(Ticket.account_id) == actor.account_id, col(Ticket.ticket_id).in_(chunk))
                .values(status=TicketStatus.RESOLVED.value, updated_at=now)
            )
        report.closed += len(gone)


async def _record(db: AsyncSession, actor: User, system: str, report: Pulled, whole: bool) -> None:
    if not report.changed:
        return  # a watch polling an idle board writes nothing
    async with write_transaction(db):
        await audit.record_change(db, actor, "ticket.pull", "ticket", None, psa=system, whole=whole, **report.as_row())


async def _run(
    db: AsyncSession,
    actor: User,
    adapter: PsaAdapter,
    tickets: AsyncIterator[PsaTicket],
    *,
    whole: bool,
    page_size: int,
    progress: Progress | None,
) -> Pulled:
    report = Pulled()
    seen: set[str] = set()
    read = 0
    async for page in _pages(tickets, page_size):
        await _apply(db, actor, adapter.name, page, report)
        seen.update(_line(ticket.id, FIELD_LIMITS["ticket_id"]) for ticket in page if not ticket.closed)
        read += len(page)
        if progress:
            progress(read)
    if whole:  # only after every page came: a pull cut short closes nothing
        await _close_the_rest(db, actor, adapter.name, seen, report)
    await _record(db, actor, adapter.name, report, whole)
    return report


async def pull(
    db: AsyncSession, *, actor: User, adapter: PsaAdapter, page_size: int = PAGE, progress: Progress | None = None
) -> Pulled:
    """Every open ticket of the board onto the desk; what left the queue upstream is closed."""
    await authorize(db, actor, Need.MEMBER, "pull tickets from the PSA")
    return await _run(
        db, actor, adapter, adapter.list_queue(page_size), whole=True, page_size=page_size, progress=progress
    )


async def newest_change(db: AsyncSession, actor: User, system: str) -> datetime | None:
    """When the PSA last changed a ticket the desk holds (its own clock, not ours)."""
    stmt = select(func.max(Ticket.psa_updated_at)).where(
        Ticket.account_id == actor.account_id, Ticket.ticket_kind == TicketKind.PSA, Ticket.psa_system == system
    )
    return (await db.exec(stmt)).one()


async def pull_changes(
    db: AsyncSession, *, actor: User, adapter: PsaAdapter, page_size: int = PAGE, progress: Progress | None = None
) -> Pulled:
    """Only what changed upstream since the newest change the desk holds (a whole pull if none)."""
    await authorize(db, actor, Need.MEMBER, "pull tickets from the PSA")
    since = await newest_change(db, actor, adapter.name)
    if since is None:
        return await pull(db, actor=actor, adapter=adapter, page_size=page_size, progress=progress)
    tickets = adapter.changed_since(since - OVERLAP, page_size)
    return await _run(db, actor, adapter, tickets, whole=False, page_size=page_size, progress=progress)


Said = Callable[[str], None]
BACKOFF_CAP = 300.0


async def watch(
    db: AsyncSession,
    *,
    actor: User,
    adapter: PsaAdapter,
    every: float,
    say: Said,
    polls: int | None = None,
    page_size: int = PAGE,
) -> int:
    """A whole pull, then the changes every ``every`` seconds, until cancelled (Ctrl+C) or
    ``polls`` are done; returns the polls made. A 429 waits its Retry-After (when longer
    than the poll gap), a PSA that is down is tried again with a growing wait; a refusal
    that will not pass (keys refused: polling them would only lock the account) ends it."""
    made = 0
    failures = 0
    while polls is None or made < polls:
        wait = every
        try:
            report = await (pull if made == 0 else pull_changes)(db, actor=actor, adapter=adapter, page_size=page_size)
        except PsaRateLimited as exc:
            wait = max(every, exc.retry_after)
            say(f"{exc}; next poll in {wait:g} s")
        except PsaError as exc:
            if not exc.retryable:
                raise
            failures += 1
            wait = min(every * 2**failures, BACKOFF_CAP)
            say(f"{exc}; next poll in {wait:g} s")
        else:
            failures = 0
            if report.changed or made == 0:
                say(summary(report))
        made += 1
        if polls is None or made < polls:
            await asyncio.sleep(wait)
    return made


def summary(report: Pulled) -> str:
    text = f"new {report.new}, updated {report.updated}, skipped {report.skipped}, closed {report.closed}"
    if report.conflicts:
        more = "…" if len(report.conflicts) >= MAX_CONFLICTS else ""
        text += f"; ids already used by another ticket, left alone: {', '.join(report.conflicts)}{more}"
    return text
