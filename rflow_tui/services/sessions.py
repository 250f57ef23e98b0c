"""The walk-session lifecycle (SPEC "Walk sessions"): start, step, note, resolve, escalate.

Every operation takes the store's ``AsyncSession`` first and an ``actor`` (the user
doing it); every lookup is scoped to the actor's account, and the actor's rights
are read fresh inside the operation (``access.authorize``). Each mutation is one
write transaction that takes the write lock before reading the session, so the
audit entry, ticket status and notifications commit together with the change and
two processes never lose each other's steps.

Integrity between windows and people:
- a ticket has at most one active walk (checked here, and by a unique index);
- a walk's ``version`` counts changes to its position; a caller that passes the
  version it saw is refused (StaleWalk) if another window moved the walk since;
- each served AI node carries a ``token`` made here, and an answer must name it:
  a model that reuses a node id cannot let a stale window answer a newer question.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, overload

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rflow_tui.ai.base import NodeContext, NodeGenerator
from rflow_tui.ai.deadline import DEFAULT_STEP_SECONDS
from rflow_tui.ai.judge import NodeJudge
from rflow_tui.db import write_transaction
from rflow_tui.domain.enums import (
    OPEN_TICKET_STATUSES,
    TERMINAL_NODE_TYPES,
    WALKS_A_TREE,
    Answer,
    NodeType,
    ProposalStatus,
    ReasonCategory,
    TicketKind,
    TicketStatus,
    WalkKind,
    WalkStatus,
    values,
)
from rflow_tui.domain.walk_step import StepSource, WalkStep
from rflow_tui.flows.walked_path import normalize_walked_path
from rflow_tui.models import Flow, FlowProposal, L1WalkSession, Ticket, User, row_id, utcnow
from rflow_tui.services import audit, feed, notifications, tickets
from rflow_tui.services.access import Need, acting_as, authorize, get_in_account, in_account
from rflow_tui.services.errors import (
    InvalidState,
    PayloadTooLarge,
    StaleWalk,
    ValidationFailed,
    WalkInProgress,
)
from rflow_tui.services.fields import accepted
from rflow_tui.text import clean

if TYPE_CHECKING:
    from rflow_tui.ai.generate import CheckedNode

NOTES_CAP_BYTES = 256 * 1024
STEP_NOTE_CAP = 16 * 1024
TEXT_CAP = 64 * 1024
TITLE_CAP = 255


# --- helpers -------------------------------------------------------------------


async def _audit(db: AsyncSession, actor: User, walk: L1WalkSession, action: str, **details: Any) -> None:
    await audit.record(
        db,
        account_id=actor.account_id,
        actor_user_id=actor.id,
        action=action,
        target_type=feed.WALK_TARGET,
        target_id=walk.id,
        session_kind=walk.session_kind,
        ticket_id=walk.ticket_id,
        ticket_kind=walk.ticket_kind,
        **details,
    )
    if walk.status != WalkStatus.ACTIVE:  # on the engineers' feed: their screens catch up when this commits
        await feed.announce(db, actor.account_id)


@overload
def _check_len(value: str, cap: int, what: str, *, single_line: bool = False) -> str: ...
@overload
def _check_len(value: str | None, cap: int, what: str, *, single_line: bool = False) -> str | None: ...
def _check_len(value: str | None, cap: int, what: str, *, single_line: bool = False) -> str | None:
    """``value`` cleaned for storing (see ``fields.accepted``), or PayloadTooLarge over ``cap``."""
    if value is None:
        return None
    value = accepted(value, what, single_line=single_line)
    if len(value) > cap:
        raise PayloadTooLarge(f"{what} is {len(value):,} characters; the limit is {cap:,}")
    return value


def _check_ticket_kind(kind: str) -> None:
    if kind not in tuple(TicketKind):
        raise ValidationFailed(f"ticket_kind must be {values(TicketKind)}, not '{kind}'")


async def get_session(db: AsyncSession, *, actor: User, session_id: int) -> L1WalkSession:
    """The session if it belongs to the actor's account; NotFound otherwise (same message)."""
    await authorize(db, actor, Need.MEMBER, "read walks")
    return await _walk(db, actor, session_id)


async def _walk(db: AsyncSession, actor: User, session_id: int, lock: bool = False) -> L1WalkSession:
    return await get_in_account(
        db,
        L1WalkSession,
        actor.account_id,
        id=session_id,
        lock=lock,
        missing=f"walk session {session_id} does not exist",
    )


async def _active(
    db: AsyncSession,
    actor: User,
    session_id: int,
    kinds: tuple[WalkKind, ...] | None = None,
    version: int | None = None,
) -> L1WalkSession:
    """The session, locked, if the actor may walk and it is active, of one of ``kinds``
    and (when the caller passes one) still at ``version``."""
    await authorize(db, actor, Need.WALK, "walk tickets")
    walk = await _walk(db, actor, session_id, lock=True)
    if walk.status != WalkStatus.ACTIVE:
        raise InvalidState(f"walk session {session_id} is {walk.status}, not active")
    if kinds and walk.session_kind not in kinds:
        raise InvalidState(
            f"walk session {session_id} is an {walk.session_kind} session; this needs " + " or ".join(kinds)
        )
    _check_version(walk, version)
    return walk


def _check_version(walk: L1WalkSession, version: int | None) -> None:
    if version is not None and walk.version != version:
        raise StaleWalk("this walk moved on in another window since you saw it; refresh it and answer again")


def _moved(walk: L1WalkSession) -> None:
    """The walk's position changed: windows holding an older version are refused."""
    walk.version = (walk.version or 0) + 1
    walk.last_step_at = utcnow()


def _append(walk: L1WalkSession, step: WalkStep) -> None:
    _moved(walk)
    step = step.answered_at(walk.last_step_at or utcnow())
    walk.walked_path = [*(walk.walked_path or []), step.to_json()]
    walk.current_node_id = step.node_id


async def _refuse_second_walk(db: AsyncSession, actor: User, ticket_kind: str, ticket_id: str, instead: str) -> None:
    """WalkInProgress if the ticket already has an active walk (whoever's it is)."""
    existing = await in_account(
        db, L1WalkSession, actor.account_id, ticket_kind=ticket_kind, ticket_id=ticket_id, status=WalkStatus.ACTIVE
    )
    if existing is None:
        return
    yours = existing.created_by_user_id == actor.id
    if yours:
        whose = "your"
    else:
        owner = await in_account(db, User, actor.account_id, id=existing.created_by_user_id)
        whose = f"{(owner.name or owner.email) if owner else 'another tech'}'s"
    raise WalkInProgress(
        f"ticket {ticket_id} already has {whose} active {existing.session_kind} walk (session {existing.id}): "
        f"{instead}",
        session_id=row_id(existing),
        owner_user_id=existing.created_by_user_id,
        yours=yours,
    )


async def _require_open_ticket(db: AsyncSession, actor: User, ticket_kind: str, ticket_id: str, doing: str) -> None:
    """A closed internal ticket is reopened first (``rflow tickets reopen``), never closed over."""
    if ticket_kind != TicketKind.INTERNAL:
        return
    ticket = await tickets.get_ticket(db, actor.account_id, ticket_id)
    if ticket.status not in OPEN_TICKET_STATUSES:
        raise InvalidState(
            f"ticket {ticket_id} is {ticket.status}; reopen it (`rflow tickets reopen {ticket_id}`) before {doing}"
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
    _check_ticket_kind(ticket_kind)
    if not ticket_id or len(ticket_id) > 64:
        raise ValidationFailed("a walk needs a ticket id of at most 64 characters")
    async with write_transaction(db):
        user = await authorize(db, actor, Need.WALK, "walk tickets")
        await _require_open_ticket(db, actor, ticket_kind, ticket_id, "walking it")
        await _refuse_second_walk(db, actor, ticket_kind, ticket_id, "resume it or take it over")
        if ticket_kind == TicketKind.INTERNAL:
            await tickets.set_internal_status(db, actor.account_id, ticket_id, TicketStatus.IN_PROGRESS)
        walk = L1WalkSession(
            account_id=actor.account_id,
            created_by_user_id=row_id(actor),
            acting_as=acting_as(user),
            ticket_id=ticket_id,
            ticket_kind=ticket_kind,
            session_kind=session_kind,
            walked_path=[],
            walk_notes=[],
            last_step_at=utcnow(),
            **fields,
        )
        db.add(walk)
        await _flush_new_walk(db, ticket_id)
        await _audit(db, actor, walk, "l1.session.start", acting_as=walk.acting_as)
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
        walk = await _active(db, actor, session_id)
        previous = walk.created_by_user_id
        if previous == actor.id:
            return walk
        walk.created_by_user_id = row_id(actor)
        walk.acting_as = acting_as(user)
        _moved(walk)
        db.add(walk)
        await _audit(db, actor, walk, "l1.session.take_over", from_user_id=previous, acting_as=walk.acting_as)
    return walk


# --- start ----------------------------------------------------------------------


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
    problem_text = _check_len(problem_text, TEXT_CAP, "the problem text") or ""
    category = _check_len(category, 80, "the category", single_line=True)
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


# --- steps ----------------------------------------------------------------------


async def record_step(
    db: AsyncSession,
    *,
    actor: User,
    session_id: int,
    node_id: str,
    question: str,
    answer: str | None,
    note: str | None = None,
    yes_label: str | None = None,
    no_label: str | None = None,
    options: list[str] | None = None,
    version: int | None = None,
) -> L1WalkSession:
    """Append the step ``{node_id, question, answer, l1_note}`` (an answer of None
    acknowledges an instruction; a question also records its labels, Yes/No by default;
    a choice, its ``options`` and the chosen one's number as the answer).

    ``version``: the walk's version the caller decided on; if another window has
    stepped or stepped back since, the step is refused under the lock (StaleWalk).
    """
    note = _check_len(note, STEP_NOTE_CAP, "the step note")
    if answer is None:
        step = WalkStep.instruction(StepSource.FLOW, node_id, question, note=note)
    elif options is not None:
        try:
            step = WalkStep.choice(StepSource.FLOW, node_id, question, options, answer, note=note)
        except ValueError as exc:
            raise ValidationFailed(str(exc)) from None
    elif answer in tuple(Answer):
        step = WalkStep.question(
            StepSource.FLOW, node_id, question, answer, yes_label=yes_label, no_label=no_label, note=note
        )
    else:
        raise ValidationFailed("answer a question with 'yes' or 'no'")
    async with write_transaction(db):
        walk = await _active(db, actor, session_id, WALKS_A_TREE, version)
        _append(walk, step)
        db.add(walk)
        await _audit(
            db, actor, walk, "l1.session.step", node_id=node_id, answer=answer, step=len(walk.walked_path or [])
        )
    return walk


async def update_notes(db: AsyncSession, *, actor: User, session_id: int, notes: list[Any]) -> L1WalkSession:
    """Replace the session notes. Over 256 KiB encoded is refused; the stored notes stay."""
    if not isinstance(notes, list):
        raise ValidationFailed("notes must be a list")
    notes = [accepted(n, "the session notes") if isinstance(n, str) else n for n in notes]
    size = len(json.dumps(notes, ensure_ascii=False).encode("utf-8"))
    if size > NOTES_CAP_BYTES:
        raise PayloadTooLarge(
            f"notes are {size / 1024:,.0f} KiB; the limit is {NOTES_CAP_BYTES // 1024} KiB. "
            "Nothing was saved: shorten them and try again"
        )
    async with write_transaction(db):
        walk = await _active(db, actor, session_id)
        changed = list(notes) != list(walk.walk_notes or [])
        walk.walk_notes = list(notes)
        walk.last_step_at = utcnow()
        db.add(walk)
        if changed:  # the autosave also runs when nothing changed; that is no event
            await _audit(db, actor, walk, "l1.session.notes", size_bytes=size)
    return walk


async def advance_ai_build(
    db: AsyncSession,
    *,
    actor: User,
    session_id: int,
    generator: NodeGenerator,
    judge: NodeJudge | None,
    node_id: str | None = None,
    token: str | None = None,
    answer: str | None = None,
    note: str | None = None,
    version: int | None = None,
    deadline_seconds: float | None = DEFAULT_STEP_SECONDS,
) -> dict[str, Any]:
    """Answer the pending node (if ``token``) and return the next one.

    Every served node carries a ``token`` made here; an answer passes it back (and
    may pass ``node_id`` too, checked as well). With neither and a pending node, the
    pending node comes back unchanged: no new generator call while a served node is
    unanswered. A new node is stored (and so shown) only once the rules and the
    ``judge`` both passed it; ``judge`` is required so that no caller skips layer 2 by
    forgetting it (None: the desk turned it off). The generator and the judge run
    outside any transaction (they may take seconds); if either fails, the answer is
    already saved and calling again with no token retries. ``deadline_seconds`` bounds
    the generation (every attempt and the judge): past it, GenerationTimeoutError.

    The three phases are also callable alone (``answer_ai_node``, the generation,
    ``serve_ai_node``), so a screen can stop the generation without touching the store.
    """
    from rflow_tui.ai.generate import checked_node

    step = await answer_ai_node(
        db, actor=actor, session_id=session_id, node_id=node_id, token=token, answer=answer, note=note, version=version
    )
    if step.served is not None:
        return step.served
    checked = await checked_node(generator, step.context, judge, deadline_seconds=deadline_seconds)
    return await serve_ai_node(db, actor=actor, session_id=session_id, step=step, checked=checked, judge=judge)


@dataclass(frozen=True)
class AiStep:
    """An AI walk after ``answer_ai_node``: ``served`` is a node to show now (the pending
    one replayed, or a prefetched one just stored), else ``context`` is what the next node
    is generated from, at the walk's ``version``; ``walk`` is the walk as stored."""

    served: dict[str, Any] | None
    context: NodeContext
    version: int
    walk: L1WalkSession


async def answer_ai_node(
    db: AsyncSession,
    *,
    actor: User,
    session_id: int,
    node_id: str | None = None,
    token: str | None = None,
    answer: str | None = None,
    note: str | None = None,
    version: int | None = None,
    prefetched: CheckedNode | None = None,
    judge: NodeJudge | None = None,
) -> AiStep:
    """Store the answer to the pending node (named by its ``token``), or with no token find
    the pending node to replay. See ``advance_ai_build``.

    ``prefetched``: a node written ahead for this answer. When it fits the context the
    answer leads to (the same prompt, passed by this desk's ``judge``) it is stored as the
    pending node in the same transaction; otherwise it is ignored and the caller generates.
    """
    note = _check_len(note, STEP_NOTE_CAP, "the step note")
    if node_id is not None and token is None:
        raise ValidationFailed("answer a node with the token it was served with (node ids can repeat)")
    async with write_transaction(db):
        walk = await _active(db, actor, session_id, (WalkKind.AI_BUILD,), version)
        pending = walk.pending_node
        if token is None:
            if pending is not None:
                if not pending.get("token"):  # served before nodes carried tokens
                    walk.pending_node = pending = {**pending, "token": _new_token()}
                    db.add(walk)
                return AiStep(pending, _context(walk), walk.version, walk)
        else:
            if pending is None or pending.get("token") != token or node_id not in (None, pending.get("id")):
                raise StaleWalk(
                    f"that is not the question waiting in session {session_id}; "
                    "it was answered already or replaced (refresh the walk)"
                )
            if pending.get("type") in TERMINAL_NODE_TYPES:
                raise InvalidState("this walk has reached its end: resolve or escalate it")
            if pending.get("type") == NodeType.QUESTION and answer not in tuple(Answer):
                raise ValidationFailed("answer a question with 'yes' or 'no'")
            _append(walk, WalkStep.answering(StepSource.AI, pending, answer, note))
            walk.pending_node = None
            db.add(walk)
            await _audit(
                db, actor, walk, "l1.session.step", node_id=node_id, answer=answer, step=len(walk.walked_path or [])
            )
        context = _context(walk)
        if prefetched is not None and _is_checked(prefetched, judge) and prefetched.fits(context, judge):
            node = await _serve(db, actor, walk, prefetched, prefetched=True)
            return AiStep(node, context, walk.version, walk)
        return AiStep(None, context, walk.version, walk)


async def ai_prefetch_contexts(
    db: AsyncSession, *, actor: User, session_id: int, token: str
) -> dict[str | None, NodeContext]:
    """For each answer of the pending node named by ``token``, the context its next node
    would be written from, were it chosen now with no step note: what a prefetch writes
    for ("yes"/"no" for a question, None for an instruction's "done", nothing at an end).

    Reads only: nothing is stored until an answer is chosen (``answer_ai_node``).
    """
    await authorize(db, actor, Need.WALK, "walk tickets")
    walk = await _walk(db, actor, session_id)
    pending = walk.pending_node
    if walk.status != WalkStatus.ACTIVE or walk.session_kind != WalkKind.AI_BUILD or pending is None:
        return {}
    if pending.get("token") != token or pending.get("type") in TERMINAL_NODE_TYPES:
        return {}
    answers: tuple[str | None, ...] = tuple(Answer) if pending.get("type") == NodeType.QUESTION else (None,)
    base = _context(walk)
    return {
        answer: replace(base, walked_path=[*base.walked_path, WalkStep.answering(StepSource.AI, pending, answer, None)])
        for answer in answers
    }


def _context(walk: L1WalkSession) -> NodeContext:
    return NodeContext(problem_text=walk.problem_text or "", category=walk.category or "", walked_path=walk.steps)


async def serve_ai_node(
    db: AsyncSession,
    *,
    actor: User,
    session_id: int,
    step: AiStep,
    checked: CheckedNode,
    judge: NodeJudge | None,
) -> dict[str, Any]:
    """Store ``checked`` as the pending node (with a fresh token) and return it.

    Only a ``CheckedNode`` passed by this desk's ``judge`` is accepted. If another
    window served or answered a node since ``step``, theirs stands.
    """
    if not _is_checked(checked, judge):
        raise InvalidState("an AI node is served only after the rules and this desk's safety judge passed it")
    async with write_transaction(db):
        walk = await _active(db, actor, session_id, (WalkKind.AI_BUILD,))
        if walk.version != step.version:
            if walk.pending_node is not None:
                return walk.pending_node
            raise StaleWalk("this walk moved on in another window; refresh it")
        return await _serve(db, actor, walk, checked, prefetched=False)


def _is_checked(checked: Any, judge: NodeJudge | None) -> bool:
    """A ``CheckedNode`` (sealed by ai.generate) that this desk's judge passed."""
    from rflow_tui.ai.generate import CheckedNode

    return isinstance(checked, CheckedNode) and checked.judge is judge


async def _serve(
    db: AsyncSession, actor: User, walk: L1WalkSession, checked: CheckedNode, *, prefetched: bool
) -> dict[str, Any]:
    """Store a checked node as the walk's pending node, with a fresh token (inside the caller's transaction)."""
    walk.pending_node = node = {**checked.node, "token": _new_token()}
    walk.current_node_id = node["id"]
    _moved(walk)
    db.add(walk)
    await _audit(
        db, actor, walk, "l1.session.node", node_id=node["id"], node_type=node.get("type"), prefetched=prefetched
    )
    return node


def _new_token() -> str:
    """Names one served node for the answer to it; never reused, unlike a model's ids."""
    return secrets.token_hex(8)


# --- endings --------------------------------------------------------------------


async def resolve(
    db: AsyncSession, *, actor: User, session_id: int, helpful: bool, resolution_notes: str
) -> L1WalkSession:
    """End the walk resolved. A helpful AI build becomes a flow proposal whose tree ends
    in the resolution node the AI served (the fix that worked), when it served one."""
    resolution_notes = _check_len(resolution_notes, TEXT_CAP, "the resolution notes")
    async with write_transaction(db):
        walk = await _active(db, actor, session_id)
        await _require_open_ticket(db, actor, walk.ticket_kind, walk.ticket_id, "resolving this walk")
        walk.status = WalkStatus.RESOLVED
        walk.helpful = bool(helpful)
        walk.resolution_notes = resolution_notes
        _moved(walk)
        walk.resolved_at = walk.last_step_at
        db.add(walk)
        if helpful and walk.session_kind == WalkKind.PROPOSAL and walk.flow_proposal_id:
            proposal = await in_account(db, FlowProposal, actor.account_id, id=walk.flow_proposal_id)
            if proposal is not None:
                proposal.validated_by_outcome = True
                db.add(proposal)
        steps = walk.steps
        captured = None
        if helpful and walk.session_kind == WalkKind.AI_BUILD and steps:
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
        await _audit(
            db,
            actor,
            walk,
            "l1.session.resolve",
            helpful=bool(helpful),
            acting_as=acting_as(actor),
            proposal_id=captured.id if captured else None,
        )
    return walk


def _served_resolution(walk: L1WalkSession) -> dict[str, Any] | None:
    pending = walk.pending_node
    return pending if pending and pending.get("type") == NodeType.RESOLUTION else None


def _check_reason(reason: str, reason_category: str) -> str:
    if reason_category not in tuple(ReasonCategory):
        raise ValidationFailed(f"reason category must be one of {', '.join(ReasonCategory)}, not '{reason_category}'")
    reason = _check_len(reason, TEXT_CAP, "the escalation reason") or ""
    if not reason.strip():
        raise ValidationFailed("say why you are escalating")
    return reason


def _summary(walk: L1WalkSession, subject: str | None) -> str:
    text = (walk.problem_text or subject or f"ticket {walk.ticket_id}").strip()
    return text.splitlines()[0][:200] if text else f"ticket {walk.ticket_id}"


async def _escalate(
    db: AsyncSession, actor: User, walk: L1WalkSession, reason: str, reason_category: str, action: str
) -> None:
    walk.status = WalkStatus.ESCALATED
    walk.escalation_reason = reason.strip()
    walk.escalation_reason_category = reason_category
    _moved(walk)
    walk.resolved_at = walk.last_step_at
    db.add(walk)
    await db.flush()
    ticket = await tickets.find_ticket(db, actor.account_id, walk.ticket_id)
    if walk.ticket_kind == TicketKind.INTERNAL:
        await tickets.set_internal_status(db, actor.account_id, walk.ticket_id, TicketStatus.ESCALATED)
    await _audit(db, actor, walk, action, reason_category=reason_category, acting_as=acting_as(actor))
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
        walk = await _active(db, actor, session_id)
        await _require_open_ticket(db, actor, walk.ticket_kind, walk.ticket_id, "escalating this walk")
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
    _check_ticket_kind(ticket_kind)
    reason = _check_reason(reason, reason_category)
    problem_text = _check_len(problem_text, TEXT_CAP, "the problem text")
    category = _check_len(category, 80, "the category", single_line=True)
    async with write_transaction(db):
        user = await authorize(db, actor, Need.WALK, "walk tickets")
        await _require_open_ticket(db, actor, ticket_kind, ticket_id, "escalating it")
        await _refuse_second_walk(db, actor, ticket_kind, ticket_id, "escalate that walk instead")
        walk = L1WalkSession(
            account_id=actor.account_id,
            created_by_user_id=row_id(actor),
            acting_as=acting_as(user),
            ticket_id=ticket_id,
            ticket_kind=ticket_kind,
            session_kind=WalkKind.ADHOC,
            status=WalkStatus.ESCALATED,  # born closed: never an active walk, even for a moment
            category=category,
            problem_text=problem_text,
            walked_path=[],
            walk_notes=[],
        )
        db.add(walk)
        await db.flush()
        await _escalate(db, actor, walk, reason, reason_category, "l1.session.escalate_no_walk")
    return walk


# --- reads ----------------------------------------------------------------------


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


async def my_finished_walks(db: AsyncSession, *, actor: User, limit: int = 100) -> list[L1WalkSession]:
    """The actor's own resolved and escalated walks, newest first: a tech confirms an escalation went through."""
    await authorize(db, actor, Need.MEMBER, "read walks")
    stmt = (
        select(L1WalkSession)
        .where(
            L1WalkSession.account_id == actor.account_id,
            L1WalkSession.created_by_user_id == actor.id,
            col(L1WalkSession.status).in_((WalkStatus.RESOLVED, WalkStatus.ESCALATED)),
        )
        .order_by(col(L1WalkSession.resolved_at).desc(), col(L1WalkSession.id).desc())
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
