"""What the screens read about walks: my active walks, my finished walks, their subjects, and
the escalations list."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rflow_tui.domain.enums import (
    WALKS_A_TREE,
    TicketKind,
    WalkStatus,
)
from rflow_tui.domain.walk_step import WalkStep
from rflow_tui.models import L1WalkSession, Ticket, User, row_id
from rflow_tui.services.access import Need, authorize
from rflow_tui.services.errors import ServiceError, WalkInProgress
from rflow_tui.services.walks.core import get_session, refuse_second_walk
from rflow_tui.services.walks.path import walk_steps_of

FINISHED = (WalkStatus.RESOLVED, WalkStatus.ESCALATED, WalkStatus.ABANDONED)


async def walk_with_steps(db: AsyncSession, *, actor: User, session_id: int) -> tuple[L1WalkSession, list[WalkStep]]:
    """The walk and its steps in order, as the walk screen shows them (one store session)."""
    walk = await get_session(db, actor=actor, session_id=session_id)
    return walk, await walk_steps_of(db, walk)


async def active_sessions_for(db: AsyncSession, *, actor: User) -> list[L1WalkSession]:
    """The actor's unfinished walks, most recent first: offered first on start (resume)."""
    await authorize(db, actor, Need.WALK, "walk tickets")
    rows = await db.exec(
        select(L1WalkSession)
        .where(
            L1WalkSession.account_id == actor.account_id,
            L1WalkSession.created_by_user_id == actor.id,
            L1WalkSession.status == WalkStatus.ACTIVE,
        )
        .order_by(col(L1WalkSession.last_step_at).desc(), col(L1WalkSession.id).desc())
    )
    return list(rows)


async def my_finished_walks(db: AsyncSession, *, actor: User, offset: int = 0, limit: int = 100) -> list[L1WalkSession]:
    """One page of the actor's own resolved, escalated and abandoned walks, newest first: a tech
    confirms an escalation went through and opens what became of it."""
    await authorize(db, actor, Need.MEMBER, "read walks")
    stmt = (
        select(L1WalkSession)
        .where(
            L1WalkSession.account_id == actor.account_id,
            L1WalkSession.created_by_user_id == actor.id,
            col(L1WalkSession.status).in_(FINISHED),
        )
        .order_by(col(L1WalkSession.resolved_at).desc(), col(L1WalkSession.id).desc())
        .offset(offset)
        .limit(limit)
    )
    return list(await db.exec(stmt))


async def walk_subjects(db: AsyncSession, *, actor: User, walks: list[L1WalkSession]) -> dict[int, str]:
    """Each walk's ticket subject (its problem's first line when the ticket is not on this desk), by walk id."""
    await authorize(db, actor, Need.MEMBER, "read walks")
    internal = {w.ticket_id for w in walks if w.ticket_kind == TicketKind.INTERNAL}
    subjects: dict[str, str] = {}
    if internal:
        rows = await db.exec(
            select(Ticket.ticket_id, Ticket.subject).where(
                Ticket.account_id == actor.account_id, col(Ticket.ticket_id).in_(internal)
            )
        )
        subjects = dict(rows.all())
    out = {}
    for walk in walks:
        subject = subjects.get(walk.ticket_id) if walk.ticket_kind == TicketKind.INTERNAL else None
        if not subject and walk.problem_text and walk.problem_text.strip():
            subject = walk.problem_text.strip().splitlines()[0]
        out[row_id(walk)] = subject or ""
    return out


async def list_escalations(
    db: AsyncSession, *, actor: User, since: datetime | None = None, limit: int = 200
) -> list[L1WalkSession]:
    """Escalated sessions, newest first; ``since`` keeps only those escalated after it."""
    await authorize(db, actor, Need.REVIEW, "see the escalations screen")
    stmt = select(L1WalkSession).where(
        L1WalkSession.account_id == actor.account_id, L1WalkSession.status == WalkStatus.ESCALATED
    )
    if since is not None:
        stmt = stmt.where(col(L1WalkSession.resolved_at) > since)
    stmt = stmt.order_by(col(L1WalkSession.resolved_at).desc(), col(L1WalkSession.id).desc()).limit(limit)
    return list(await db.exec(stmt))


async def walk_in_progress(
    db: AsyncSession, *, actor: User, ticket_id: str, ticket_kind: str = TicketKind.INTERNAL
) -> WalkInProgress | None:
    """The ticket's unfinished walk, as the refusal a second start would meet (None: no walk),
    so a screen can offer to resume it before the tech picks a way to walk the ticket."""
    try:
        await refuse_second_walk(db, actor, ticket_kind, ticket_id, "resume it or take it over")
    except WalkInProgress as busy:
        return busy
    return None


async def transcript_of(db: AsyncSession, actor: User, walk: L1WalkSession) -> dict[str, Any]:
    """The walk's transcript (``export.walk_transcript``) with the node a tree walk is on."""
    from rflow_tui.services.export import walk_transcript
    from rflow_tui.services.walks.flow_steps import current_flow_node

    end_node = None
    if walk.session_kind in WALKS_A_TREE:
        try:
            end_node = await current_flow_node(db, actor=actor, session_id=row_id(walk))
        except ServiceError:
            end_node = None
    return await walk_transcript(db, actor=actor, walk=walk, steps=await walk_steps_of(db, walk), end_node=end_node)


async def read_transcript(db: AsyncSession, *, actor: User, session_id: int) -> dict[str, Any]:
    """One walk's transcript, the walk read in the actor's account, with what became of it
    since it ended (an escalation's comments and who claimed, closed or reopened it)."""
    from rflow_tui.services.export import escalation_fate

    walk = await get_session(db, actor=actor, session_id=session_id)
    transcript = await transcript_of(db, actor, walk)
    if walk.status == WalkStatus.ESCALATED:
        transcript["engineers"] = await escalation_fate(db, actor, walk)
    return transcript
