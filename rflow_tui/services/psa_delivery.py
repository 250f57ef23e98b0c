"""Draining the PSA outbox with several items in flight.

Delivering one item is ``psa_outbox.deliver_one`` (its lease, its marker check, its
backoff and Retry-After); the outbox's ``drain`` runs up to ``concurrency`` of them at once,
so a drain of a thousand notes waits on the PSA ``concurrency`` calls at a time instead of
one. The HTTP layer caps concurrent calls per endpoint as well (``[psa] max_concurrency``),
whatever calls it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from rflow_tui.models import User, utcnow
from rflow_tui.psa.base import PsaAdapter
from rflow_tui.redact import DEFAULT_PRIVACY, Privacy
from rflow_tui.services import outbox, psa_outbox
from rflow_tui.services.outbox import OpenDb


async def drain(
    open_db: OpenDb,
    *,
    actor: User,
    adapter: PsaAdapter,
    statuses: dict[str, str],
    privacy: Privacy = DEFAULT_PRIVACY,
    concurrency: int = 4,
    now: datetime | None = None,
) -> outbox.Drained:
    """Deliver every item that is due now, ``concurrency`` at a time; the counts of what happened.

    An item another push delivered or claimed meanwhile is left to it (its lease).
    """
    now = now or utcnow()
    async with open_db() as db:
        due = await psa_outbox.due_items(db, actor=actor, system=adapter.name, now=now)

    async def deliver(db: AsyncSession, item_id: int) -> str:
        return await psa_outbox.deliver_one(
            db, actor=actor, adapter=adapter, statuses=statuses, item_id=item_id, privacy=privacy, now=now
        )

    return await outbox.drain(open_db, due, deliver, concurrency=concurrency)


async def drain_as_configured(open_db: OpenDb, *, actor: User, adapter: PsaAdapter, settings: Any) -> outbox.Drained:
    """``drain`` with the desk's ``[psa]`` statuses and concurrency and its ``[privacy]``."""
    psa = settings.psa
    return await drain(
        open_db,
        actor=actor,
        adapter=adapter,
        statuses={"resolved": psa.resolved_status, "escalated": psa.escalated_status},
        privacy=settings.privacy.policy(),
        concurrency=psa.max_concurrency,
    )
