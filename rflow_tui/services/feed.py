"""The escalations feed: what changed since a cursor the server assigns in commit order.

The cursor is the account's audit-chain position (``audit_log.seq``). Every change to a
walk is audited inside its own transaction, and appending bumps the account's
``audit_head`` under its row lock (PostgreSQL) or the write lock (SQLite): a transaction
that takes seq n+1 waits until the one holding n has committed. So a reader that has
seen everything up to n has seen every change numbered n or less, whatever the writers'
clocks say and in whatever order their transactions began. (Polling for rows newer than
the newest ``resolved_at`` shown missed a late commit and a workstation clock behind.)

Every audited change to a walk that is no longer active (escalate, resolve, and the
engineers' claim, comment, close and reopen) is announced in its transaction
(``sessions._audit`` calls ``announce``): on PostgreSQL a NOTIFY, delivered at commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, cast, text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rflow_tui.domain.enums import WalkStatus
from rflow_tui.models import AuditHead, AuditLog, L1WalkSession, User
from rflow_tui.services.access import Need, authorize

WALK_TARGET = "l1_walk_session"
FIRST_LOAD_LIMIT = 200


# The NOTIFY channel of one account: ``rflow_feed_`` and the account's ``feed_channel``, a
# random name only its own people can read (row-level security on ``account``). PostgreSQL
# lets any login LISTEN on or NOTIFY any channel; it cannot stop one who knows the name. So
# the name is a secret, and a notification carries nothing: a listener that hears one (real
# or forged) re-reads the database through row-level security, and shows only what is there.
CHANNEL_SQL = "SELECT 'rflow_feed_' || feed_channel FROM account WHERE id = $1"


async def announce(db: AsyncSession, account_id: int) -> None:
    """Tell the account's live feeds to catch up once this transaction commits (PostgreSQL).

    SQLite needs nothing: its feeds watch ``PRAGMA data_version``, which every commit bumps.
    """
    if db.get_bind().dialect.name == "postgresql":
        notify = "SELECT pg_notify('rflow_feed_' || feed_channel, '') FROM account WHERE id = :account"
        await (await db.connection()).execute(text(notify), {"account": int(account_id)})


@dataclass(frozen=True)
class FeedBatch:
    """One catch-up: the walks that changed after the caller's cursor, and the new cursor.

    ``full``: the first load (no cursor yet); ``walks`` is then the whole list to show.
    Otherwise ``walks`` holds every walk changed since, that is not an active walk any
    more (escalated, or resolved, closed... the screen keeps what it shows).
    """

    cursor: int
    walks: list[L1WalkSession] = field(default_factory=list)
    full: bool = False


async def escalation_changes(
    db: AsyncSession, *, actor: User, after: int | None = None, limit: int = FIRST_LOAD_LIMIT
) -> FeedBatch:
    """The escalations changed after ``after`` (the cursor of the previous batch), or all of them."""
    await authorize(db, actor, Need.REVIEW, "see the escalations screen")
    # The cursor first: a change committed after this read comes in the next batch, never lost between two reads.
    cursor = await _head(db, actor.account_id)
    if after is None:
        return FeedBatch(cursor, await _escalations(db, actor.account_id, limit), full=True)
    if cursor <= after:
        return FeedBatch(after)
    changed = select(AuditLog.target_id).where(
        AuditLog.account_id == actor.account_id,
        AuditLog.target_type == WALK_TARGET,
        col(AuditLog.seq) > after,
        col(AuditLog.seq) <= cursor,
    )
    stmt = (
        select(L1WalkSession)
        .where(
            L1WalkSession.account_id == actor.account_id,
            L1WalkSession.status != WalkStatus.ACTIVE,
            cast(L1WalkSession.id, String).in_(changed),
        )
        .order_by(col(L1WalkSession.resolved_at).desc(), col(L1WalkSession.id).desc())
        .execution_options(populate_existing=True)
    )
    return FeedBatch(cursor, list(await db.exec(stmt)))


async def _head(db: AsyncSession, account_id: int) -> int:
    seq = (await db.exec(select(AuditHead.seq).where(AuditHead.account_id == account_id))).first()
    return int(seq or 0)


async def _escalations(db: AsyncSession, account_id: int, limit: int) -> list[L1WalkSession]:
    stmt = (
        select(L1WalkSession)
        .where(L1WalkSession.account_id == account_id, L1WalkSession.status == WalkStatus.ESCALATED)
        .order_by(col(L1WalkSession.resolved_at).desc(), col(L1WalkSession.id).desc())
        .limit(limit)
    )
    return list(await db.exec(stmt))


@dataclass(frozen=True)
class Endpoint:
    """How a feed opens its own connection to the store the app's sessions use."""

    dialect: str
    connect_args: tuple[Any, ...]
    connect_kwargs: dict[str, Any]
    sqlite_path: str | None = None


async def store_endpoint(db: AsyncSession, *, actor: User) -> Endpoint:
    """The connection arguments SQLAlchemy itself would use (same role, host, TLS options)."""
    del actor  # anyone signed in may know where their own store is
    engine = db.get_bind().engine
    url = engine.url
    if engine.dialect.name == "sqlite":
        return Endpoint("sqlite", (), {}, sqlite_path=url.database)
    args, kwargs = engine.dialect.create_connect_args(url)
    return Endpoint(engine.dialect.name, tuple(args), dict(kwargs))
