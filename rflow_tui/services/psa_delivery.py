"""Draining the PSA outbox with several items in flight.

Delivering one item is ``psa_outbox.deliver_one`` (its lease, its marker check, its
backoff and Retry-After); this runs up to ``concurrency`` of them at once, each worker on
its own store session (a session is not shared between tasks), so a drain of a thousand
notes waits on the PSA ``concurrency`` calls at a time instead of one. The HTTP layer caps
concurrent calls per endpoint as well (``[psa] max_concurrency``), whatever calls it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from rflow_tui.models import User, utcnow
from rflow_tui.psa.base import PsaAdapter
from rflow_tui.redact import DEFAULT_PRIVACY, Privacy
from rflow_tui.services import psa_outbox
from rflow_tui.services.errors import NotFound

OpenDb = Callable[[], Any]  # an async_sessionmaker: ``async with open_db() as db``


async def drain(
    open_db: OpenDb,
    *,
    actor: User,
    adapter: PsaAdapter,
    statuses: dict[str, str],
    privacy: Privacy = DEFAULT_PRIVACY,
    concurrency: int = 4,
    now: datetime | None = None,
) -> psa_outbox.Drained:
    """Deliver every item that is due now, ``concurrency`` at a time; the counts of what happened.

    An item another push delivered or claimed meanwhile is left to it (its lease).
    """
    now = now or utcnow()
    async with open_db() as db:
        due = await psa_outbox.due_items(db, actor=actor, system=adapter.name, now=now)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for item_id in due:
        queue.put_nowait(item_id)
    outcomes: list[str] = []

    async def worker() -> None:
        async with open_db() as db:
            while not queue.empty():
                item_id = queue.get_nowait()
                # NotFound: delivered by another push since it was listed (a delivered item is no one's to lock)
                with contextlib.suppress(NotFound):
                    outcomes.append(
                        await psa_outbox.deliver_one(
                            db,
                            actor=actor,
                            adapter=adapter,
                            statuses=statuses,
                            item_id=item_id,
                            privacy=privacy,
                            now=now,
                        )
                    )

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(due))))))
    return psa_outbox.Drained(
        outcomes.count(psa_outbox.DELIVERED), outcomes.count(psa_outbox.FAILED), outcomes.count(psa_outbox.PENDING)
    )
