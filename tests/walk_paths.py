"""A walk's stored steps as tests read them (the ``walk_step`` rows, in order: what the one
``walked_path`` list used to be), and ``put_path`` for tests that set up old or odd data."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, text, update
from sqlmodel import col, select

from rflow_tui.domain.walk_step import WalkStep, read_path
from rflow_tui.models import L1WalkSession, WalkStepRow


def _id(walk: Any) -> int:
    return walk if isinstance(walk, int) else walk.id


async def path_of(db, walk) -> list[dict[str, Any]]:
    """The stored JSON of each step of ``walk`` (a walk or its id), stepped-back ones included."""
    rows = await db.exec(
        select(WalkStepRow.step).where(WalkStepRow.walk_id == _id(walk)).order_by(col(WalkStepRow.seq))
    )
    return [dict(step) for step in rows]


async def steps_of(db, walk) -> list[WalkStep]:
    return read_path(await path_of(db, walk))


async def put_path(db, walk, path: list[dict[str, Any]], *, commit: bool = True) -> None:
    """Replace the walk's steps with ``path`` (test set-up: data from before a change, a forged
    clock). On PostgreSQL this passes the guard that keeps steps append-only, as only the
    superuser the tests connect as can (``session_replication_role``)."""
    walk_id = _id(walk)
    account_id = (await db.exec(select(L1WalkSession.account_id).where(L1WalkSession.id == walk_id))).one()
    if db.bind.dialect.name == "postgresql":
        await db.exec(text("SET LOCAL session_replication_role = replica"))
    await db.exec(delete(WalkStepRow).where(col(WalkStepRow.walk_id) == walk_id))
    for seq, step in enumerate(path, start=1):
        db.add(WalkStepRow(account_id=account_id, walk_id=walk_id, seq=seq, step=step, undone=bool(step.get("undone"))))
    await db.flush()
    await db.exec(update(L1WalkSession).where(col(L1WalkSession.id) == walk_id).values(step_count=len(path)))
    if commit:
        await db.commit()
