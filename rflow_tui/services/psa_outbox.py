"""The PSA outbox: a walk's end owes its PSA ticket a note and a status, and gets them,
exactly once, whenever the PSA answers.

``enqueue_walk_end`` writes the row inside the walk's ending transaction, so a PSA that is
down never holds up resolving or escalating. ``deliver_due`` posts what is due, one item
at a time: a note carries its item's marker, so an item tried before (a timeout after the
server may have committed, a push that died) has the ticket's notes searched for it before
anything is posted again. A 429 waits what its Retry-After says; other passing failures
back off exponentially; a refusal that will not pass (bad keys, a ticket gone, a request
refused as it is) marks the item failed until someone re-queues it (``retry``). The lease,
the backoff and the re-queueing are the outbox's (``services/outbox.py``).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from rflow_tui.db import write_transaction
from rflow_tui.domain.enums import WalkStatus
from rflow_tui.models import L1WalkSession, PsaOutboxItem, User, utcnow
from rflow_tui.psa.base import PsaAdapter, PsaError, PsaRateLimited, find_marked_note, with_marker
from rflow_tui.redact import DEFAULT_PRIVACY, Privacy, redact_for_psa
from rflow_tui.services import audit
from rflow_tui.services import outbox as lifecycle
from rflow_tui.services.outbox import DELIVERED, FAILED, PENDING, Drained

__all__ = ["DELIVERED", "FAILED", "PENDING", "Drained"]


async def enqueue_walk_end(db: AsyncSession, walk: L1WalkSession, note: str) -> PsaOutboxItem:
    """The note and status a walk's end owes its PSA ticket. Called inside the ending's
    transaction, after the walk's status is set, for a PSA ticket only."""
    from rflow_tui.services.tickets import find_ticket

    ticket = await find_ticket(db, walk.account_id, walk.ticket_id)
    item = PsaOutboxItem(
        account_id=walk.account_id,
        session_id=walk.id or 0,
        psa_system=(ticket.psa_system if ticket else None) or "",
        ticket_id=walk.ticket_id,
        outcome=WalkStatus(walk.status).value,
        note=note,
        idempotency_key=secrets.token_hex(16),
    )
    db.add(item)
    return item


async def due_items(db: AsyncSession, *, actor: User, system: str, now: datetime | None = None) -> list[int]:
    """The ids of the actor's account's items for this PSA that are due now, oldest first."""
    return await lifecycle.due(
        db,
        PsaOutboxItem,
        actor=actor,
        doing="deliver notes to the PSA",
        now=now or utcnow(),
        where=(PsaOutboxItem.psa_system == system,),
    )


async def deliver_due(
    db: AsyncSession,
    *,
    actor: User,
    adapter: PsaAdapter,
    statuses: dict[str, str],
    privacy: Privacy = DEFAULT_PRIVACY,
    now: datetime | None = None,
) -> Drained:
    """Deliver every item of the actor's account that is due now, for this adapter's PSA, one
    at a time (``services/psa_delivery.py`` runs several at once).

    ``statuses``: the PSA status to set for each outcome ("" or missing: leave it as it is).
    ``privacy``: the desk's ``[privacy]``; secrets in a note never leave unasked.
    """
    now = now or utcnow()
    outcomes = [
        await deliver_one(
            db, actor=actor, adapter=adapter, statuses=statuses, privacy=privacy, item_id=item_id, now=now
        )
        for item_id in await due_items(db, actor=actor, system=adapter.name, now=now)
    ]
    return lifecycle.counted(outcomes)


async def deliver_one(
    db: AsyncSession,
    *,
    actor: User,
    adapter: PsaAdapter,
    statuses: dict[str, str],
    item_id: int,
    privacy: Privacy = DEFAULT_PRIVACY,
    now: datetime | None = None,
) -> str:
    """Claim the item (a lease, committed), call the PSA outside any transaction (a slow PSA
    never holds the desk's write lock), then record what happened: its state afterwards."""
    now = now or utcnow()
    item, claimed = await lifecycle.claim(db, PsaOutboxItem, actor=actor, item_id=item_id, now=now)
    if not claimed:
        return str(item.state)  # delivered, failed, or another push holds its lease
    tried_before = item.attempts > 1
    try:
        note = await find_marked_note(adapter, item.ticket_id, item.idempotency_key) if tried_before else None
        if note is None:
            text = with_marker(redact_for_psa(item.note, privacy), item.idempotency_key)
            note = await adapter.post_note(item.ticket_id, text, item.idempotency_key)
        status = statuses.get(item.outcome, "")
        if status:
            await adapter.set_status(item.ticket_id, status)
    except PsaError as exc:
        retry_at = now + _wait(exc, item.attempts) if exc.retryable else None
        return await lifecycle.record_failure(
            db, PsaOutboxItem, actor=actor, item_id=item_id, error=str(exc), retry_at=retry_at
        )
    async with write_transaction(db):
        item = await lifecycle.locked(db, PsaOutboxItem, actor, item_id)
        item.state, item.delivered_at, item.psa_note_id, item.last_error = DELIVERED, utcnow(), note.id, None
        db.add(item)
        await audit.record_change(
            db, actor, "psa.deliver", "psa_outbox", item.id, ticket_id=item.ticket_id, note_id=note.id
        )
    return DELIVERED


def _wait(exc: PsaError, attempts: int) -> timedelta:
    if isinstance(exc, PsaRateLimited):
        return timedelta(seconds=max(exc.retry_after, 1.0))
    return lifecycle.backoff(attempts)


async def outbox(db: AsyncSession, *, actor: User, limit: int = 200) -> list[PsaOutboxItem]:
    """The account's outbox, newest first: what is pending, delivered and failed, with the last error."""
    return await lifecycle.newest(db, PsaOutboxItem, actor=actor, doing="see the PSA outbox", limit=limit)


async def retry(db: AsyncSession, *, actor: User, item_id: int) -> PsaOutboxItem:
    """Queue a failed item again, due now (after the keys or the ticket were fixed)."""
    return await lifecycle.requeue(
        db, PsaOutboxItem, actor=actor, item_id=item_id, doing="re-queue PSA notes", action="psa.retry"
    )


def as_row(item: PsaOutboxItem) -> dict[str, Any]:
    """An item as `rflow psa status --json` shows it (never the note's text)."""
    return {
        "id": item.id,
        "ticket": item.ticket_id,
        "psa": item.psa_system,
        "outcome": item.outcome,
        "state": item.state,
        "attempts": item.attempts,
        "next_attempt_at": lifecycle.when_due(item),
        "last_error": item.last_error,
        "psa_note_id": item.psa_note_id,
    }
