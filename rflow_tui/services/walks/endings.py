"""How a walk ends: resolve (with the proposal a helpful AI walk leaves for review) or escalate
(with or without a walk), each committed with its audit entry, ticket status and notifications."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from rflow_tui.db import write_transaction
from rflow_tui.domain.enums import (
    NodeType,
    ProposalStatus,
    ReasonCategory,
    TicketKind,
    TicketStatus,
    WalkKind,
    WalkStatus,
)
from rflow_tui.flows.walked_path import normalize_walked_path
from rflow_tui.models import FlowProposal, L1WalkSession, User, row_id
from rflow_tui.services import alert_outbox, notifications, psa_outbox, tickets
from rflow_tui.services.access import Need, acting_as, authorize, in_account
from rflow_tui.services.errors import (
    ValidationFailed,
)
from rflow_tui.services.psa_note import transcript_text
from rflow_tui.services.walks.core import (
    TEXT_CAP,
    TITLE_CAP,
    active_walk,
    audit_walk,
    check_len,
    check_ticket_kind,
    mark_moved,
    refuse_second_walk,
    require_open_ticket,
)
from rflow_tui.services.walks.path import walk_steps_of
from rflow_tui.services.walks.reads import transcript_of
from rflow_tui.text import clean


async def resolve(
    db: AsyncSession, *, actor: User, session_id: int, helpful: bool, resolution_notes: str
) -> L1WalkSession:
    """End the walk resolved. A helpful AI build becomes a flow proposal whose tree ends
    in the resolution node the AI served (the fix that worked), when it served one."""
    resolution_notes = check_len(resolution_notes, TEXT_CAP, "the resolution notes")
    async with write_transaction(db):
        walk = await active_walk(db, actor, session_id)
        await require_open_ticket(db, actor, walk.ticket_kind, walk.ticket_id, "resolving this walk")
        walk.status = WalkStatus.RESOLVED
        walk.helpful = bool(helpful)
        walk.resolution_notes = resolution_notes
        mark_moved(walk)
        walk.resolved_at = walk.last_step_at
        db.add(walk)
        if helpful and walk.session_kind == WalkKind.PROPOSAL and walk.flow_proposal_id:
            proposal = await in_account(db, FlowProposal, actor.account_id, id=walk.flow_proposal_id)
            if proposal is not None:
                proposal.validated_by_outcome = True
                db.add(proposal)
        steps = await walk_steps_of(db, walk) if helpful and walk.session_kind == WalkKind.AI_BUILD else []
        captured = None
        if steps:
            title = clean(resolution_notes, single_line=True)[:TITLE_CAP] or "AI L1 resolution"
            captured = FlowProposal(
                account_id=walk.account_id,
                proposal_type="new_flow",
                source="ai_realtime_l1",
                status=ProposalStatus.PENDING,
                validated_by_outcome=True,
                title=title,
                category=walk.category or "",
                proposed_flow_data={
                    "tree_structure": normalize_walked_path(steps, end=_served_resolution(walk)),
                    "match_keywords": [],
                },
                source_session_id=walk.id,
                ticket_id=walk.ticket_id,
                ticket_kind=walk.ticket_kind,
            )
            db.add(captured)
            await db.flush()
        if walk.ticket_kind == TicketKind.INTERNAL:
            await tickets.set_internal_status(
                db, actor.account_id, walk.ticket_id, TicketStatus.RESOLVED, resolution_notes
            )
        await audit_walk(
            db,
            actor,
            walk,
            "l1.session.resolve",
            helpful=bool(helpful),
            acting_as=acting_as(actor),
            proposal_id=captured.id if captured else None,
        )
        await _tell_the_psa(db, actor, walk)
    return walk


async def _tell_the_psa(
    db: AsyncSession, actor: User, walk: L1WalkSession, transcript: dict[str, Any] | None = None
) -> None:
    """A walk on a PSA ticket owes it the transcript and a status: queued in this same transaction."""
    if walk.ticket_kind == TicketKind.PSA:
        note = transcript_text(transcript or await transcript_of(db, actor, walk))
        await psa_outbox.enqueue_walk_end(db, walk, note)


def _notes_of(transcript: dict[str, Any]) -> list[str]:
    """The tech's notes (session notes, then each step's), for an alert that may carry them."""
    steps = [
        f"Step {n}: {step['note']}" for n, step in enumerate(transcript.get("steps") or [], start=1) if step.get("note")
    ]
    return [*(transcript.get("notes") or []), *steps]


def _served_resolution(walk: L1WalkSession) -> dict[str, Any] | None:
    pending = walk.pending_node
    return pending if pending and pending.get("type") == NodeType.RESOLUTION else None


def _check_reason(reason: str, reason_category: str) -> str:
    if reason_category not in tuple(ReasonCategory):
        raise ValidationFailed(f"reason category must be one of {', '.join(ReasonCategory)}, not '{reason_category}'")
    reason = check_len(reason, TEXT_CAP, "the escalation reason") or ""
    if not reason.strip():
        raise ValidationFailed("say why you are escalating")
    return reason


def _summary(walk: L1WalkSession, subject: str | None) -> str:
    text = (walk.problem_text or subject or f"ticket {walk.ticket_id}").strip()
    return text.splitlines()[0][:200] if text else f"ticket {walk.ticket_id}"


def _mark_escalated(walk: L1WalkSession, reason: str, reason_category: str) -> None:
    walk.status = WalkStatus.ESCALATED
    walk.escalation_reason = reason.strip()
    walk.escalation_reason_category = reason_category
    mark_moved(walk)
    walk.resolved_at = walk.last_step_at


async def _escalate(
    db: AsyncSession, actor: User, walk: L1WalkSession, reason: str, reason_category: str, action: str
) -> None:
    """Escalate an active walk: the walk, then what follows from it."""
    _mark_escalated(walk, reason, reason_category)
    db.add(walk)
    await _after_escalation(db, actor, walk, reason_category, action)


async def _after_escalation(
    db: AsyncSession, actor: User, walk: L1WalkSession, reason_category: str, action: str
) -> None:
    """The ticket, the audit entry, the PSA and the engineers, for a walk just marked escalated."""
    await db.flush()
    ticket = await tickets.find_ticket(db, actor.account_id, walk.ticket_id)
    if walk.ticket_kind == TicketKind.INTERNAL:
        await tickets.set_internal_status(db, actor.account_id, walk.ticket_id, TicketStatus.ESCALATED)
    await audit_walk(db, actor, walk, action, reason_category=reason_category, acting_as=acting_as(actor))
    transcript = await transcript_of(db, actor, walk)
    await _tell_the_psa(db, actor, walk, transcript)
    alert_outbox.enqueue_escalation(
        db, walk, ticket=ticket, escalated_by=actor.name or actor.email, notes=_notes_of(transcript)
    )
    await notifications.notify_escalation(
        db,
        actor.account_id,
        {
            "session_id": walk.id,
            "ticket_id": walk.ticket_id,
            "problem_summary": _summary(walk, ticket.subject if ticket else None),
            "reason_category": reason_category,
            "escalated_by_user_id": actor.id,
        },
    )


async def escalate(
    db: AsyncSession, *, actor: User, session_id: int, reason: str, reason_category: str
) -> L1WalkSession:
    reason = _check_reason(reason, reason_category)
    async with write_transaction(db):
        walk = await active_walk(db, actor, session_id)
        await require_open_ticket(db, actor, walk.ticket_kind, walk.ticket_id, "escalating this walk")
        await _escalate(db, actor, walk, reason, reason_category, "l1.session.escalate")
    return walk


async def escalate_without_walk(
    db: AsyncSession,
    *,
    actor: User,
    ticket_id: str,
    reason: str,
    reason_category: str,
    ticket_kind: str = TicketKind.INTERNAL,
    problem_text: str | None = None,
    category: str | None = None,
) -> L1WalkSession:
    """No tree could be built: an ``adhoc`` session born escalated, with an empty path.

    Refused on a closed ticket (reopen it first) and on a ticket with an active walk
    (escalate that walk instead): a ticket's status never flips under a walk.
    """
    check_ticket_kind(ticket_kind)
    reason = _check_reason(reason, reason_category)
    problem_text = check_len(problem_text, TEXT_CAP, "the problem text")
    category = check_len(category, 80, "the category", single_line=True)
    async with write_transaction(db):
        user = await authorize(db, actor, Need.WALK, "walk tickets")
        await require_open_ticket(db, actor, ticket_kind, ticket_id, "escalating it")
        await refuse_second_walk(db, actor, ticket_kind, ticket_id, "escalate that walk instead")
        walk = L1WalkSession(
            account_id=actor.account_id,
            created_by_user_id=row_id(actor),
            acting_as=acting_as(user),
            ticket_id=ticket_id,
            ticket_kind=ticket_kind,
            session_kind=WalkKind.ADHOC,
            category=category,
            problem_text=problem_text,
            walk_notes=[],
        )
        _mark_escalated(walk, reason, reason_category)  # born closed: never an active walk, even for a moment
        # started and ended in one instant: how it is told apart (domain/walk_names.py)
        walk.created_at = walk.last_step_at or walk.created_at
        db.add(walk)
        await _after_escalation(db, actor, walk, reason_category, "l1.session.escalate_no_walk")
    return walk


async def abandon(db: AsyncSession, *, actor: User, session_id: int, reason: str) -> L1WalkSession:
    """Stop a walk without an outcome (the wrong kind of walk, the wrong ticket, a duplicate):
    the reason is kept on the walk and in the audit log, and the ticket goes back to the queue
    open, so the tech (or a colleague) can walk it again another way."""
    reason = check_len(reason, TEXT_CAP, "the reason")
    if not reason.strip():
        raise ValidationFailed("say why the walk is abandoned")
    async with write_transaction(db):
        walk = await active_walk(db, actor, session_id)
        walk.status = WalkStatus.ABANDONED
        walk.resolution_notes = reason.strip()
        mark_moved(walk)
        walk.resolved_at = walk.last_step_at
        walk.pending_node = None
        db.add(walk)
        if walk.ticket_kind == TicketKind.INTERNAL:
            await tickets.set_internal_status(db, actor.account_id, walk.ticket_id, TicketStatus.OPEN)
        await audit_walk(db, actor, walk, "l1.session.abandon", reason=walk.resolution_notes)
    return walk
