"""Engineers working an escalation: claim it, comment on it, close it with an outcome, reopen it.

Every read and change is scoped to the actor's account and needs the REVIEW right
(owners, admins, engineers), checked afresh in the operation's transaction; every
change is one write transaction that locks the walk first (two engineers claiming
at once: one wins, the other is told who), with its audit entry inside it.

An internal ticket follows its escalation while nobody else has moved it on: closing
resolves a ticket still ``escalated``, reopening escalates a ticket still ``resolved``;
neither touches a ticket that a newer walk has taken over.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rflow_tui.db import write_transaction
from rflow_tui.domain.enums import EscalationOutcome, TicketKind, TicketStatus, WalkStatus, values
from rflow_tui.domain.walk_step import WalkStep
from rflow_tui.models import AlertOutboxItem, EscalationComment, L1WalkSession, Ticket, User, row_id, utcnow
from rflow_tui.services import notifications, tickets
from rflow_tui.services.access import Need, authorize, get_in_account, in_account
from rflow_tui.services.errors import InvalidState, PayloadTooLarge, ValidationFailed
from rflow_tui.services.fields import accepted
from rflow_tui.services.walks.core import audit_walk
from rflow_tui.services.walks.path import walk_steps_of
from rflow_tui.text import clean

COMMENT_CAP = 16 * 1024
OUTCOME_NOTES_CAP = 64 * 1024
WORK = "work escalations"


class ClaimedByOther(InvalidState):
    """Someone else is on this escalation: taking it over is a deliberate second step."""

    def __init__(self, message: str, *, claimed_by_user_id: int) -> None:
        super().__init__(message)
        self.claimed_by_user_id = claimed_by_user_id


@dataclass
class EscalationDetail:
    """One escalation as the pane shows it: the walk, its ticket (None: a PSA ticket
    the desk does not hold, whose details are in the PSA) and its comments, oldest first."""

    walk: L1WalkSession
    ticket: Ticket | None
    comments: list[EscalationComment] = field(default_factory=list)
    steps: list[WalkStep] = field(default_factory=list)
    alert: AlertOutboxItem | None = None  # the alert it queued (``alert_outbox``); None before alerts came in


async def _escalated(db: AsyncSession, actor: User, session_id: int, *, lock: bool = False) -> L1WalkSession:
    walk = await get_in_account(
        db,
        L1WalkSession,
        actor.account_id,
        id=session_id,
        lock=lock,
        missing=f"escalation {session_id} does not exist",
    )
    if walk.status != WalkStatus.ESCALATED:
        raise InvalidState(f"walk session {session_id} is {walk.status}, not escalated")
    return walk


async def _open(db: AsyncSession, actor: User, session_id: int, doing: str) -> L1WalkSession:
    """The escalation, locked, if it is not closed."""
    await authorize(db, actor, Need.REVIEW, WORK)
    walk = await _escalated(db, actor, session_id, lock=True)
    if walk.closed_at is not None:
        raise InvalidState(f"escalation {session_id} ({walk.ticket_id}) is closed; reopen it before {doing}")
    return walk


async def _name(db: AsyncSession, actor: User, user_id: int | None) -> str:
    user = await in_account(db, User, actor.account_id, id=user_id) if user_id is not None else None
    return (user.name or user.email) if user else "someone"


def _text(value: str, what: str, cap: int) -> str:
    text = accepted(value, what).strip()
    if not text:
        raise ValidationFailed(f"{what} is empty: write something first")
    if len(text) > cap:
        raise PayloadTooLarge(f"{what} is {len(text):,} characters; the limit is {cap:,}")
    return text


# --- reads ----------------------------------------------------------------------


async def escalation_detail(db: AsyncSession, *, actor: User, session_id: int) -> EscalationDetail:
    """The walk, its ticket, its comments and its steps, for every walk kind."""
    await authorize(db, actor, Need.REVIEW, "see escalations")
    walk = await _escalated(db, actor, session_id)
    ticket = await tickets.find_ticket(db, actor.account_id, walk.ticket_id)
    comments = await db.exec(
        select(EscalationComment)
        .where(EscalationComment.account_id == actor.account_id, EscalationComment.session_id == session_id)
        .order_by(col(EscalationComment.id))
    )
    alert = await in_account(db, AlertOutboxItem, actor.account_id, session_id=session_id)
    return EscalationDetail(
        walk=walk, ticket=ticket, comments=list(comments), steps=await walk_steps_of(db, walk), alert=alert
    )


def _person(user: User) -> str:
    return clean(user.name or user.email, single_line=True)


# --- who is on it ---------------------------------------------------------------


async def claim(db: AsyncSession, *, actor: User, session_id: int, take_over: bool = False) -> L1WalkSession:
    """The actor is on it now. Someone else's claim is refused (ClaimedByOther, naming them)
    unless ``take_over``; the audit entry says whose it was."""
    async with write_transaction(db):
        walk = await _open(db, actor, session_id, "claiming it")
        previous = walk.claimed_by_user_id
        if previous == actor.id:
            return walk
        if previous is not None and not take_over:
            raise ClaimedByOther(
                f"{await _name(db, actor, previous)} is already on escalation {session_id} ({walk.ticket_id}); "
                "take it over to work it yourself",
                claimed_by_user_id=previous,
            )
        walk.claimed_by_user_id = row_id(actor)
        walk.claimed_at = utcnow()
        db.add(walk)
        await audit_walk(db, actor, walk, "escalation.claim", from_user_id=previous)
        who = _person(actor)
        notifications.tell(db, walk, actor, walk.created_by_user_id, notifications.CLAIMED, f"{who} is on it")
        if previous is not None:
            notifications.tell(db, walk, actor, previous, notifications.TAKEN_OVER, f"{who} took it over from you")
    return walk


async def release(db: AsyncSession, *, actor: User, session_id: int) -> L1WalkSession:
    """The actor is no longer on it: it is back among the unclaimed. Only whoever is on it may."""
    async with write_transaction(db):
        walk = await _open(db, actor, session_id, "releasing it")
        if walk.claimed_by_user_id != actor.id:
            whom = "nobody" if walk.claimed_by_user_id is None else await _name(db, actor, walk.claimed_by_user_id)
            raise InvalidState(f"you are not on escalation {session_id}: {whom} is")
        walk.claimed_by_user_id = None
        walk.claimed_at = None
        db.add(walk)
        await audit_walk(db, actor, walk, "escalation.release")
    return walk


# --- comments -------------------------------------------------------------------


async def add_comment(db: AsyncSession, *, actor: User, session_id: int, body: str) -> EscalationComment:
    """A comment on the escalation (open or closed), in the order written."""
    body = _text(body, "the comment", COMMENT_CAP)
    async with write_transaction(db):
        await authorize(db, actor, Need.REVIEW, WORK)
        walk = await _escalated(db, actor, session_id, lock=True)
        comment = EscalationComment(
            account_id=actor.account_id, session_id=row_id(walk), author_user_id=row_id(actor), body=body
        )
        db.add(comment)
        await db.flush()
        await audit_walk(db, actor, walk, "escalation.comment", comment_id=comment.id, size=len(body))
        said = f"{_person(actor)} commented: {clean(body, single_line=True)[:120]}"
        notifications.tell(db, walk, actor, walk.created_by_user_id, notifications.COMMENTED, said)
    return comment


# --- outcome --------------------------------------------------------------------


async def _newest_walk_on(db: AsyncSession, actor: User, walk: L1WalkSession) -> bool:
    """No later walk on the same ticket: its status is still this escalation's to move."""
    later = await db.exec(
        select(L1WalkSession.id).where(
            L1WalkSession.account_id == actor.account_id,
            L1WalkSession.ticket_kind == walk.ticket_kind,
            L1WalkSession.ticket_id == walk.ticket_id,
            col(L1WalkSession.id) > row_id(walk),
        )
    )
    return later.first() is None


async def _ticket_follows(
    db: AsyncSession, actor: User, walk: L1WalkSession, was: TicketStatus, to: TicketStatus, notes: str | None
) -> str | None:
    """Move an internal ticket from ``was`` to ``to`` if nobody moved it on; its status after."""
    if walk.ticket_kind != TicketKind.INTERNAL:
        return None
    ticket = await tickets.find_ticket(db, actor.account_id, walk.ticket_id)
    if ticket is None:
        return None
    if ticket.status == was and await _newest_walk_on(db, actor, walk):
        await tickets.set_internal_status(db, actor.account_id, walk.ticket_id, to, notes)
        return to
    return ticket.status


async def close(db: AsyncSession, *, actor: User, session_id: int, outcome: str, notes: str) -> L1WalkSession:
    """Closed with an outcome and what was done; whoever closes it was on it if nobody was."""
    if outcome not in tuple(EscalationOutcome):
        raise ValidationFailed(f"the outcome must be {values(EscalationOutcome)}, not '{outcome}'")
    notes = _text(notes, "the outcome notes", OUTCOME_NOTES_CAP)
    async with write_transaction(db):
        walk = await _open(db, actor, session_id, "closing it again")
        now = utcnow()
        walk.closed_at, walk.closed_by_user_id = now, row_id(actor)
        walk.outcome, walk.outcome_notes = outcome, notes
        if walk.claimed_by_user_id is None:
            walk.claimed_by_user_id, walk.claimed_at = row_id(actor), now
        db.add(walk)
        status = await _ticket_follows(db, actor, walk, TicketStatus.ESCALATED, TicketStatus.RESOLVED, notes)
        await audit_walk(db, actor, walk, "escalation.close", outcome=outcome, ticket_status=status)
        done = (
            f"{_person(actor)} closed it ({EscalationOutcome(outcome).label}): {clean(notes, single_line=True)[:120]}"
        )
        notifications.tell(db, walk, actor, walk.created_by_user_id, notifications.CLOSED, done)
    return walk


async def reopen(db: AsyncSession, *, actor: User, session_id: int) -> L1WalkSession:
    """Open again (whoever was on it stays on it); the outcome it had is kept in the audit log."""
    async with write_transaction(db):
        await authorize(db, actor, Need.REVIEW, WORK)
        walk = await _escalated(db, actor, session_id, lock=True)
        if walk.closed_at is None:
            raise InvalidState(f"escalation {session_id} ({walk.ticket_id}) is open: there is nothing to reopen")
        previous = {"outcome": walk.outcome, "outcome_notes": walk.outcome_notes, "closed_by": walk.closed_by_user_id}
        walk.closed_at = walk.closed_by_user_id = walk.outcome = walk.outcome_notes = None
        db.add(walk)
        status = await _ticket_follows(db, actor, walk, TicketStatus.RESOLVED, TicketStatus.ESCALATED, None)
        await audit_walk(db, actor, walk, "escalation.reopen", ticket_status=status, **previous)
        again = f"{_person(actor)} reopened it"
        notifications.tell(db, walk, actor, walk.created_by_user_id, notifications.REOPENED, again)
    return walk
