"""A walk's steps as rows of ``walk_step``: each step appended as one row, a step back one
row marked undone, so recording step N costs the same as step 1 (issue 24). The walk row
keeps only ``step_count`` and its position; every reader of the path loads it here."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rflow_tui.domain.walk_step import WalkStep, read_path
from rflow_tui.models import L1WalkSession, WalkStepRow, row_id


def add_step_row(db: AsyncSession, walk: L1WalkSession, step: WalkStep) -> int:
    """Queue ``step`` as the walk's next row (the caller holds the walk's write lock and
    commits it with the walk and the audit entry); its ``seq``, from 1."""
    walk.step_count = seq = (walk.step_count or 0) + 1
    db.add(WalkStepRow(account_id=walk.account_id, walk_id=row_id(walk), seq=seq, step=step.to_json()))
    return seq


async def walked_path_of(db: AsyncSession, walk: L1WalkSession) -> list[dict[str, Any]]:
    """The stored JSON of every step, in order, stepped-back ones included: what the walk's
    one ``walked_path`` list used to hold."""
    rows = await db.exec(
        select(WalkStepRow.step)
        .where(WalkStepRow.account_id == walk.account_id, WalkStepRow.walk_id == row_id(walk))
        .order_by(col(WalkStepRow.seq))
    )
    return [dict(step) for step in rows if isinstance(step, dict)]


async def walk_steps_of(db: AsyncSession, walk: L1WalkSession) -> list[WalkStep]:
    """The walk's steps in order, stepped-back ones included (``live_steps`` skips those)."""
    return read_path(await walked_path_of(db, walk))


async def steps_by_walk(db: AsyncSession, account_id: int, walk_ids: Iterable[int]) -> dict[int, list[WalkStep]]:
    """Several walks' steps in one query, by walk id (a walk with none maps to [])."""
    ids = list(walk_ids)
    out: dict[int, list[dict[str, Any]]] = {walk_id: [] for walk_id in ids}
    if ids:
        rows = await db.exec(
            select(WalkStepRow.walk_id, WalkStepRow.step)
            .where(WalkStepRow.account_id == account_id, col(WalkStepRow.walk_id).in_(ids))
            .order_by(col(WalkStepRow.walk_id), col(WalkStepRow.seq))
        )
        for walk_id, step in rows:
            if isinstance(step, dict):
                out[walk_id].append(step)
    return {walk_id: read_path(path) for walk_id, path in out.items()}


async def last_live_row(db: AsyncSession, walk: L1WalkSession, *, before: int | None = None) -> WalkStepRow | None:
    """The newest step not stepped back over (before ``seq`` ``before`` when given): where a
    walk stands, read from one index entry however long the walk is."""
    stmt = select(WalkStepRow).where(
        WalkStepRow.account_id == walk.account_id,
        WalkStepRow.walk_id == row_id(walk),
        col(WalkStepRow.undone) == False,  # noqa: E712 (`= false`: the index serves it)
    )
    if before is not None:
        stmt = stmt.where(WalkStepRow.seq < before)
    stmt = stmt.order_by(col(WalkStepRow.seq).desc()).limit(1)
    return (await db.exec(stmt.execution_options(populate_existing=True))).first()


async def last_live_step(db: AsyncSession, walk: L1WalkSession) -> WalkStep | None:
    row = await last_live_row(db, walk)
    return read_path([row.step or {}])[0] if row is not None else None


def mark_undone(db: AsyncSession, row: WalkStepRow, at: datetime) -> WalkStep:
    """Step back over ``row``: one UPDATE of that row, its recorded fields kept as they were
    (PostgreSQL refuses any other change to a step, migrations/walk_step_sql.py)."""
    row.step = {**(row.step or {}), "undone": True, "undone_at": at.isoformat()}
    row.undone = True
    db.add(row)
    return read_path([row.step])[0]
