"""Starting a walk (SPEC "Walk sessions"): one active walk per ticket, of any kind, and taking
over a colleague's walk."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from rflow_tui.db import write_transaction
from rflow_tui.domain.enums import (
    ProposalStatus,
    TicketKind,
    TicketStatus,
    WalkKind,
)
from rflow_tui.models import Flow, FlowProposal, L1WalkSession, User, row_id, utcnow
from rflow_tui.services import tickets
from rflow_tui.services.access import Need, acting_as, authorize, get_in_account
from rflow_tui.services.errors import (
    InvalidState,
    ValidationFailed,
)
from rflow_tui.services.walks.core import (
    TEXT_CAP,
    active_walk,
    audit_walk,
    check_len,
    check_ticket_kind,
    mark_moved,
    refuse_second_walk,
    require_open_ticket,
)


async def _start(
    db: AsyncSession,
    *,
    actor: User,
    ticket_id: str,
    ticket_kind: str,
    session_kind: WalkKind,
    **fields: Any,
) -> L1WalkSession:
    check_ticket_kind(ticket_kind)
    if not ticket_id or len(ticket_id) > 64:
        raise ValidationFailed("a walk needs a ticket id of at most 64 characters")
    async with write_transaction(db):
        user = await authorize(db, actor, Need.WALK, "walk tickets")
        await require_open_ticket(db, actor, ticket_kind, ticket_id, "walking it")
        await refuse_second_walk(db, actor, ticket_kind, ticket_id, "resume it or take it over")
        if ticket_kind == TicketKind.INTERNAL:
            await tickets.set_internal_status(db, actor.account_id, ticket_id, TicketStatus.IN_PROGRESS)
        walk = L1WalkSession(
            account_id=actor.account_id,
            created_by_user_id=row_id(actor),
            acting_as=acting_as(user),
            ticket_id=ticket_id,
            ticket_kind=ticket_kind,
            session_kind=session_kind,
            walk_notes=[],
            last_step_at=utcnow(),
            **fields,
        )
        db.add(walk)
        await _flush_new_walk(db, ticket_id)
        await audit_walk(db, actor, walk, "l1.session.start", acting_as=walk.acting_as)
    return walk


async def _flush_new_walk(db: AsyncSession, ticket_id: str) -> None:
    """The unique index has the last word when two processes start at once (PostgreSQL)."""
    try:
        await db.flush()
    except IntegrityError as exc:
        raise InvalidState(
            f"another window started a walk on ticket {ticket_id} at the same moment; "
            "open it from your unfinished walks or try again"
        ) from exc


async def take_over(db: AsyncSession, *, actor: User, session_id: int) -> L1WalkSession:
    """Make another tech's active walk the actor's own (audited with whose it was).

    The walk keeps its path and notes; only who carries it on changes.
    """
    async with write_transaction(db):
        user = await authorize(db, actor, Need.WALK, "walk tickets")
        walk = await active_walk(db, actor, session_id)
        previous = walk.created_by_user_id
        if previous == actor.id:
            return walk
        walk.created_by_user_id = row_id(actor)
        walk.acting_as = acting_as(user)
        mark_moved(walk)
        db.add(walk)
        await audit_walk(db, actor, walk, "l1.session.take_over", from_user_id=previous, acting_as=walk.acting_as)
    return walk


async def start_flow_session(
    db: AsyncSession, *, actor: User, ticket_id: str, flow_id: int, ticket_kind: str = TicketKind.INTERNAL
) -> L1WalkSession:
    flow = await get_in_account(db, Flow, actor.account_id, id=flow_id, missing=f"flow {flow_id} does not exist")
    return await _start(
        db,
        actor=actor,
        ticket_id=ticket_id,
        ticket_kind=ticket_kind,
        session_kind=WalkKind.FLOW,
        flow_id=flow.id,
        category=flow.category or None,
    )


async def start_proposal_session(
    db: AsyncSession, *, actor: User, ticket_id: str, proposal_id: int, ticket_kind: str = TicketKind.INTERNAL
) -> L1WalkSession:
    proposal = await get_in_account(
        db, FlowProposal, actor.account_id, id=proposal_id, missing=f"flow proposal {proposal_id} does not exist"
    )
    if proposal.status != ProposalStatus.PENDING:
        raise InvalidState(f"flow proposal {proposal_id} is {proposal.status}, not pending")
    return await _start(
        db,
        actor=actor,
        ticket_id=ticket_id,
        ticket_kind=ticket_kind,
        session_kind=WalkKind.PROPOSAL,
        flow_proposal_id=proposal.id,
        category=proposal.category or None,
    )


async def start_adhoc_session(
    db: AsyncSession, *, actor: User, ticket_id: str, ticket_kind: str = TicketKind.INTERNAL
) -> L1WalkSession:
    return await _start(db, actor=actor, ticket_id=ticket_id, ticket_kind=ticket_kind, session_kind=WalkKind.ADHOC)


async def start_ai_build_session(
    db: AsyncSession,
    *,
    actor: User,
    ticket_id: str,
    category: str,
    problem_text: str,
    ticket_kind: str = TicketKind.INTERNAL,
) -> L1WalkSession:
    """Category and problem text are fixed here, once; later steps never re-derive them."""
    problem_text = check_len(problem_text, TEXT_CAP, "the problem text") or ""
    category = check_len(category, 80, "the category", single_line=True)
    if not problem_text.strip():
        raise ValidationFailed("an AI build needs a problem description")
    return await _start(
        db,
        actor=actor,
        ticket_id=ticket_id,
        ticket_kind=ticket_kind,
        session_kind=WalkKind.AI_BUILD,
        category=(category or "general").strip(),
        problem_text=problem_text.strip(),
    )
