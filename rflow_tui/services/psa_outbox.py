"""The PSA outbox: a walk's end owes its PSA ticket a note and a status, and gets them,
exactly once, whenever the PSA answers.

``enqueue_walk_end`` writes the row inside the walk's ending transaction, so a PSA that is
down never holds up resolving or escalating. ``deliver_due`` posts what is due, one item
at a time: a note carries its item's marker, so an item tried before (a timeout after the
server may have committed, a push that died) has the ticket's notes searched for it before
anything is posted again. A 429 waits what its Retry-After says; other passing failures
back off exponentially; a refusal that will not pass (bad keys, a ticket gone, a request
refused as it is) marks the item failed until someone re-queues it (``retry``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rflow_tui.db import write_transaction
from rflow_tui.domain.enums import WalkStatus
from rflow_tui.models import L1WalkSession, PsaOutboxItem, User, utcnow
from rflow_tui.psa.base import PsaAdapter, PsaError, PsaRateLimited, find_marked_note, with_marker
from rflow_tui.redact import DEFAULT_PRIVACY, Privacy, redact_for_psa
from rflow_tui.services import audit
from rflow_tui.services.access import Need, authorize, get_in_account
from rflow_tui.services.errors import InvalidState

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
FIRST_BACKOFF = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=1)
MAX_ERROR = 500
LEASE = timedelta(minutes=5)  # a claimed item is another push's again after this (a push that died)


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


@dataclass(frozen=True)
class Drained:
    delivered: int
    failed: int
    waiting: int


async def due_items(db: AsyncSession, *, actor: User, system: str, now: datetime | None = None) -> list[int]:
    """The ids of the actor's account's items for this PSA that are due now, oldest first."""
    await authorize(db, actor, Need.MEMBER, "deliver notes to the PSA")
    due = await db.exec(
        select(PsaOutboxItem.id)
        .where(
            PsaOutboxItem.account_id == actor.account_id,
            PsaOutboxItem.state == PENDING,
            PsaOutboxItem.psa_system == system,
            col(PsaOutboxItem.next_attempt_at) <= (now or utcnow()),
        )
        .order_by(col(PsaOutboxItem.id))
    )
    return [item_id for item_id in due if item_id is not None]


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
    return Drained(outcomes.count(DELIVERED), outcomes.count(FAILED), outcomes.count(PENDING))


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
    async with write_transaction(db):
        item = await _item(db, actor, item_id)
        if item.state != PENDING or item.next_attempt_at > now:
            return str(item.state)  # delivered, failed, or another push holds its lease
        item.attempts += 1
        item.next_attempt_at = now + LEASE
        db.add(item)
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
        async with write_transaction(db):
            item = await _item(db, actor, item_id)
            item.last_error = str(exc)[:MAX_ERROR]
            if exc.retryable:
                item.next_attempt_at = now + _wait(exc, item.attempts)
            else:
                item.state = FAILED
            db.add(item)
        return str(item.state)
    async with write_transaction(db):
        item = await _item(db, actor, item_id)
        item.state, item.delivered_at, item.psa_note_id, item.last_error = DELIVERED, utcnow(), note.id, None
        db.add(item)
        await audit.record_change(
            db, actor, "psa.deliver", "psa_outbox", item.id, ticket_id=item.ticket_id, note_id=note.id
        )
    return DELIVERED


async def _item(db: AsyncSession, actor: User, item_id: int) -> PsaOutboxItem:
    return await get_in_account(
        db, PsaOutboxItem, actor.account_id, missing=f"no outbox item {item_id}", lock=True, id=item_id
    )


def _wait(exc: PsaError, attempts: int) -> timedelta:
    if isinstance(exc, PsaRateLimited):
        return timedelta(seconds=max(exc.retry_after, 1.0))
    return min(FIRST_BACKOFF * (1 << min(max(attempts - 1, 0), 20)), MAX_BACKOFF)


async def outbox(db: AsyncSession, *, actor: User, limit: int = 200) -> list[PsaOutboxItem]:
    """The account's outbox, newest first: what is pending, delivered and failed, with the last error."""
    await authorize(db, actor, Need.MEMBER, "see the PSA outbox")
    rows = await db.exec(
        select(PsaOutboxItem)
        .where(PsaOutboxItem.account_id == actor.account_id)
        .order_by(col(PsaOutboxItem.id).desc())
        .limit(limit)
    )
    return list(rows)


async def retry(db: AsyncSession, *, actor: User, item_id: int) -> PsaOutboxItem:
    """Queue a failed item again, due now (after the keys or the ticket were fixed)."""
    async with write_transaction(db):
        await authorize(db, actor, Need.REVIEW, "re-queue PSA notes")
        item = await _item(db, actor, item_id)
        if item.state != FAILED:
            raise InvalidState(f"outbox item {item_id} is {item.state}, not failed: nothing to retry")
        item.state, item.next_attempt_at = PENDING, utcnow()
        db.add(item)
        await audit.record_change(db, actor, "psa.retry", "psa_outbox", item.id, ticket_id=item.ticket_id)
    return item


def as_row(item: PsaOutboxItem) -> dict[str, Any]:
    """An item as `rflow psa status --json` shows it (never the note's text)."""
    return {
        "id": item.id,
        "ticket": item.ticket_id,
        "psa": item.psa_system,
        "outcome": item.outcome,
        "state": item.state,
        "attempts": item.attempts,
        "next_attempt_at": item.next_attempt_at.isoformat() if item.state == PENDING else None,
        "last_error": item.last_error,
        "psa_note_id": item.psa_note_id,
    }
