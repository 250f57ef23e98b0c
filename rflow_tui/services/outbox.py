"""An outbox's delivery lifecycle, whatever it delivers: the one owner of leases, backoff,
failure and re-queueing, shared by the PSA outbox (``psa_outbox``: notes and statuses) and
the alert outbox (``alert_outbox``: escalation alerts).

A row is written inside the transaction of what it reports, so nothing is owed that did not
happen and nothing that happened is lost. Delivering one row is: ``claim`` it (a lease,
committed), call the outside world outside any transaction (a slow server never holds the
desk's write lock), then record what happened: ``record_failure`` (a passing failure waits its
backoff or its server's Retry-After; a lasting one fails the row until ``requeue``) or the
caller's own success. ``drain`` runs several rows at once, each worker on its own store
session.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rflow_tui.db import write_transaction
from rflow_tui.models import User, utcnow
from rflow_tui.services import audit
from rflow_tui.services.access import Need, authorize, get_in_account
from rflow_tui.services.errors import InvalidState, NotFound

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
FIRST_BACKOFF = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=1)
MAX_ERROR = 500
LEASE = timedelta(minutes=5)  # a claimed row is another drain's again after this (a drain that died)

OpenDb = Callable[[], Any]  # an async_sessionmaker: ``async with open_db() as db``


class Outboxed(Protocol):
    """The delivery columns every outbox table has."""

    id: int | None
    account_id: int
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    delivered_at: datetime | None


Row = TypeVar("Row", bound=SQLModel)


@dataclass(frozen=True)
class Drained:
    delivered: int
    failed: int
    waiting: int
    skipped: int = 0  # an alert no destination wanted (its filters)


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th passing failure: 30 s doubling, at most an hour."""
    return min(FIRST_BACKOFF * (1 << min(max(attempts - 1, 0), 20)), MAX_BACKOFF)


async def due(
    db: AsyncSession, model: Any, *, actor: User, doing: str, now: datetime, where: tuple[Any, ...] = ()
) -> list[int]:
    """The ids of the actor's account's rows of ``model`` due now, oldest first."""
    await authorize(db, actor, Need.MEMBER, doing)
    rows = await db.exec(
        select(model.id)
        .where(model.account_id == actor.account_id, model.state == PENDING, col(model.next_attempt_at) <= now, *where)
        .order_by(col(model.id))
    )
    return [item_id for item_id in rows if item_id is not None]


async def locked(db: AsyncSession, model: type[Row], actor: User, item_id: int) -> Row:
    """The row, locked, if it is the actor's account's."""
    return await get_in_account(db, model, actor.account_id, missing=f"no outbox item {item_id}", lock=True, id=item_id)


async def claim(db: AsyncSession, model: type[Row], *, actor: User, item_id: int, now: datetime) -> tuple[Row, bool]:
    """Take the row's lease (committed) if it is due; (row, False) when it is not this
    drain's: delivered, failed, or leased by another drain."""
    async with write_transaction(db):
        item: Any = await locked(db, model, actor, item_id)
        if item.state != PENDING or item.next_attempt_at > now:
            return item, False
        item.attempts += 1
        item.next_attempt_at = now + LEASE
        db.add(item)
    return item, True


async def record_failure(
    db: AsyncSession,
    model: type[Row],
    *,
    actor: User,
    item_id: int,
    error: str,
    retry_at: datetime | None,
    changes: dict[str, Any] | None = None,
) -> str:
    """A try that failed: due again at ``retry_at``, or failed until re-queued (None). The
    row's state afterwards. ``changes``: other columns the try settled (an alert's sent_to)."""
    async with write_transaction(db):
        item: Any = await locked(db, model, actor, item_id)
        item.last_error = error[:MAX_ERROR]
        if retry_at is not None:
            item.next_attempt_at = retry_at
        else:
            item.state = FAILED
        for column, value in (changes or {}).items():
            setattr(item, column, value)
        db.add(item)
    return str(item.state)


async def requeue(
    db: AsyncSession,
    model: type[Row],
    *,
    actor: User,
    item_id: int,
    doing: str,
    action: str,
    reset: Callable[[Any], dict[str, Any]] | None = None,
) -> Row:
    """Queue a failed row again, due now (after its keys, URL or ticket were fixed): a reviewer's.
    ``reset``: the other columns to set, from the row as it is (an alert's unconfirmed sends)."""
    async with write_transaction(db):
        await authorize(db, actor, Need.REVIEW, doing)
        item: Any = await locked(db, model, actor, item_id)
        if item.state != FAILED:
            raise InvalidState(f"outbox item {item_id} is {item.state}, not failed: nothing to retry")
        item.state, item.next_attempt_at = PENDING, utcnow()
        for column, value in (reset(item) if reset else {}).items():
            setattr(item, column, value)
        db.add(item)
        await audit.record_change(db, actor, action, str(model.__tablename__), item.id, ticket_id=item.ticket_id)
    requeued: Row = item
    return requeued


async def newest(db: AsyncSession, model: Any, *, actor: User, doing: str, limit: int = 200) -> list[Any]:
    """The account's rows, newest first: what is pending, delivered and failed, with the last error."""
    await authorize(db, actor, Need.MEMBER, doing)
    rows = await db.exec(
        select(model).where(model.account_id == actor.account_id).order_by(col(model.id).desc()).limit(limit)
    )
    return list(rows)


def when_due(item: Outboxed) -> str | None:
    """When a pending row is tried next (ISO 8601), for a status listing; None otherwise."""
    return item.next_attempt_at.isoformat() if item.state == PENDING else None


async def drain(
    open_db: OpenDb, due_ids: list[int], deliver: Callable[[AsyncSession, int], Awaitable[str]], *, concurrency: int
) -> Drained:
    """Deliver each of ``due_ids`` with ``deliver(db, item_id)`` (which returns the row's state
    afterwards), ``concurrency`` at a time, each worker on its own store session (a session is
    not shared between tasks). A row another drain delivered meanwhile is left to it."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for item_id in due_ids:
        queue.put_nowait(item_id)
    outcomes: list[str] = []

    async def worker() -> None:
        async with open_db() as db:
            while not queue.empty():
                item_id = queue.get_nowait()
                # NotFound: delivered by another drain since it was listed (a delivered row is no one's to lock)
                with contextlib.suppress(NotFound):
                    outcomes.append(await deliver(db, item_id))

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(due_ids))))))
    return counted(outcomes)


def counted(outcomes: list[str]) -> Drained:
    """The states rows were left in, counted."""
    count = outcomes.count
    return Drained(count(DELIVERED), count(FAILED), count(PENDING), count("skipped"))


Pass = Callable[[], Awaitable[tuple[str, float]]]
"""One delivery pass: what to tell the tech ("" for nothing), and how long the far side asked to wait."""


async def keep_delivering(
    one_pass: Pass, *, every: float, wake: asyncio.Event, tell: Callable[[str], None], what: str, once: bool = False
) -> None:
    """The running app's delivery, until cancelled: a pass now, then one each time ``wake`` is
    set (a walk ended) and every ``every`` seconds for retries, longer when the far side asks.
    ``tell`` gets each new piece of news once; a failed pass is said and tried again later,
    never raised into the app. ``once``: the first pass only."""
    told = ""
    while True:
        wait = every
        try:
            news, asked = await one_pass()
            wait = max(wait, asked)
        except Exception as exc:  # the store away, rights changed: said once, tried again later
            news = f"{what} is waiting: {exc}"
        if news and news != told:
            tell(news)
        told = news or told
        if once:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=wait)
        wake.clear()
