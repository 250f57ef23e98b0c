"""The audit log: every change one row, in the caller's transaction, chained per account.

Each row carries its place in the account's chain (``seq``), the hash of the row
before it and the hash of its own canonical content (``domain.audit_chain``), so an
edited, deleted or moved row breaks the chain where it happened. Appending bumps the
account's ``audit_head`` first (UPDATE ... RETURNING): on PostgreSQL that locks the
head row, on SQLite it takes the write lock, so two processes appending to one
account queue up and never fork the chain; the head also shows when the newest rows
were deleted.

Anyone able to rewrite the database can recompute every hash; the head that
``verify`` reports, written down elsewhere, anchors the log outside it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rflow_tui.domain.audit_chain import GENESIS, canonical_json, plain_json, row_hash
from rflow_tui.models import AuditHead, AuditLog, User
from rflow_tui.services.access import Need, authorize

BATCH = 500


async def record(
    db: AsyncSession,
    *,
    account_id: int,
    actor_user_id: int | None,
    action: str,
    target_type: str,
    target_id: Any,
    **details: Any,
) -> AuditLog:
    """Append one entry to the account's chain, inside the caller's transaction.

    On PostgreSQL the server writes it (``migrations/audit_sql.py``): it fills in the
    actor, time, place in the chain and hash itself, so a person's role cannot forge one.
    """
    entry = AuditLog(
        account_id=account_id,
        actor_user_id=actor_user_id,
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        details=plain_json(details),
    )
    if db.get_bind().dialect.name == "postgresql":
        return await _append_on_server(db, entry)
    entry.seq, entry.prev_hash = await _next_link(db, account_id)
    entry.row_hash = row_hash(entry)
    db.add(entry)
    await db.exec(update(AuditHead).where(col(AuditHead.account_id) == account_id).values(hash=entry.row_hash))
    return entry


async def record_change(
    db: AsyncSession, actor: User, action: str, target_type: str, target_id: Any, **details: Any
) -> AuditLog:
    """What ``actor`` just changed in their own account, audited in the same transaction."""
    return await record(
        db,
        account_id=actor.account_id,
        actor_user_id=actor.id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        **details,
    )


async def _append_on_server(db: AsyncSession, entry: AuditLog) -> AuditLog:
    """``entry`` as ``rflow_audit_append`` wrote it: with the server's actor, time, place and hash."""
    row = (
        await (await db.connection()).execute(
            text(
                "SELECT id, account_id, seq, actor_user_id, created_at, prev_hash, row_hash "
                "FROM rflow_audit_append(:account_id, :actor, :action, :target_type, :target_id, :details)"
            ),
            {
                "account_id": entry.account_id,
                "actor": entry.actor_user_id,
                "action": entry.action,
                "target_type": entry.target_type,
                "target_id": entry.target_id,
                "details": canonical_json(entry.details),
            },
        )
    ).one()
    for name in ("id", "account_id", "seq", "actor_user_id", "created_at", "prev_hash", "row_hash"):
        setattr(entry, name, getattr(row, name))
    return entry


async def _next_link(db: AsyncSession, account_id: int) -> tuple[int, str]:
    """Claim the next place in the chain: (its seq, the hash of the row before it)."""
    bump = (
        update(AuditHead)
        .where(col(AuditHead.account_id) == account_id)
        .values(seq=AuditHead.seq + 1)
        .returning(col(AuditHead.seq), col(AuditHead.hash))
    )
    claimed = (await db.exec(bump)).first()
    if claimed is not None:
        return claimed[0], claimed[1]
    # The account's first entry: start its chain (a second process doing the same at
    # this instant fails on the primary key rather than forking it).
    db.add(AuditHead(account_id=account_id, seq=1, hash=GENESIS))
    await db.flush()
    return 1, GENESIS


# --- reading and verifying ------------------------------------------------------------


async def _rows(db: AsyncSession, account_id: int, after_seq: int = 0) -> AsyncIterator[AuditLog]:
    """The account's rows in chain order, a batch at a time (a chain may be long)."""
    while True:
        batch = list(
            await db.exec(
                select(AuditLog)
                .where(AuditLog.account_id == account_id, col(AuditLog.seq) > after_seq)
                .order_by(col(AuditLog.seq), col(AuditLog.id))
                .limit(BATCH)
                .execution_options(populate_existing=True)  # what is stored, not a copy in this session
            )
        )
        for row in batch:
            yield row
        if len(batch) < BATCH:
            return
        after_seq = batch[-1].seq


@dataclass
class Verdict:
    rows: int
    head_seq: int
    head_hash: str
    broken_row_id: int | None = None
    problem: str | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None


async def verify(db: AsyncSession, *, actor: User, expect: tuple[int, str] | None = None) -> Verdict:
    """Walk the actor's account chain from the start; stop at the first row that breaks it.

    ``expect``: a (seq, hash) head recorded earlier, outside the database. The chain
    must still pass through it, which proves no row up to it was rewritten, even by
    someone who recomputed every hash.
    """
    await authorize(db, actor, Need.MANAGE, "read the audit log")
    head = await db.get(AuditHead, actor.account_id, populate_existing=True)
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS)
    expected_seq, expected_prev, count = 1, GENESIS, 0
    async for row in _rows(db, actor.account_id, after_seq=-1):
        count += 1
        problem = _break(row, expected_seq, expected_prev)
        if problem is None and expect is not None and row.seq == expect[0] and row.row_hash != expect[1]:
            problem = (
                f"row {row.id} (#{row.seq}) is not the row recorded as #{expect[0]}: the log was rewritten up to here"
            )
        if problem is not None:
            return Verdict(count, head_seq, head_hash, row.id, problem)
        expected_seq, expected_prev = row.seq + 1, row.row_hash
    last_seq = expected_seq - 1
    if expect is not None and expect[0] > last_seq:
        return Verdict(
            count, head_seq, head_hash, None, f"the chain ends at #{last_seq}, before the recorded #{expect[0]}"
        )
    if (head_seq, head_hash) != (last_seq, expected_prev):
        missing = head_seq - last_seq
        problem = f"the chain ends at #{last_seq} but the account's head is #{head_seq}: " + (
            f"the newest {missing} row(s) were deleted" if missing > 0 else "the head no longer matches the rows"
        )
        return Verdict(count, head_seq, head_hash, None, problem)
    return Verdict(count, head_seq, head_hash)


def _break(row: AuditLog, expected_seq: int, expected_prev: str) -> str | None:
    where = f"row {row.id} (#{row.seq})"
    if row_hash(row) != row.row_hash:
        return f"{where} was changed after it was written: its content does not match its hash"
    if row.seq > expected_seq:
        return (
            f"{where}: #{expected_seq}"
            + (f" to #{row.seq - 1} are" if row.seq - 1 > expected_seq else " is")
            + " missing before it (deleted)"
        )
    if row.seq < expected_seq or row.prev_hash != expected_prev:
        before = f"#{expected_seq - 1} was rewritten, or " if expected_seq > 1 else ""
        return f"{where} does not follow the row before it: {before}a row was moved or inserted here"
    return None


async def entries(db: AsyncSession, *, actor: User, after_seq: int = 0, last: int | None = None) -> list[AuditLog]:
    """The account's entries oldest first: those after ``after_seq``, or only the ``last`` n."""
    await authorize(db, actor, Need.MANAGE, "read the audit log")
    stmt = select(AuditLog).where(AuditLog.account_id == actor.account_id, col(AuditLog.seq) > after_seq)
    if last is not None:
        newest = list(await db.exec(stmt.order_by(col(AuditLog.seq).desc(), col(AuditLog.id).desc()).limit(last)))
        return newest[::-1]
    return list(await db.exec(stmt.order_by(col(AuditLog.seq), col(AuditLog.id)).limit(BATCH)))
