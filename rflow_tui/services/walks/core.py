"""What every walk operation shares: loading and locking a walk in the actor's account, the
version check, the size limits, appending a step and the walk's audit entry."""

from __future__ import annotations

from typing import Any, overload

from sqlmodel.ext.asyncio.session import AsyncSession

from rflow_tui.domain.enums import (
    OPEN_TICKET_STATUSES,
    WALK_KIND_NAMES,
    TicketKind,
    WalkKind,
    WalkStatus,
    values,
)
from rflow_tui.domain.walk_step import WalkStep
from rflow_tui.models import L1WalkSession, User, row_id, utcnow
from rflow_tui.services import audit, feed, tickets
from rflow_tui.services.access import Need, authorize, get_in_account, in_account
from rflow_tui.services.errors import (
    InvalidState,
    PayloadTooLarge,
    StaleWalk,
    ValidationFailed,
    WalkInProgress,
)
from rflow_tui.services.fields import accepted
from rflow_tui.services.walks.path import add_step_row

NOTES_CAP_BYTES = 256 * 1024


STEP_NOTE_CAP = 16 * 1024


TEXT_CAP = 64 * 1024


TITLE_CAP = 255


async def audit_walk(db: AsyncSession, actor: User, walk: L1WalkSession, action: str, **details: Any) -> None:
    await audit.record_change(
        db,
        actor,
        action,
        feed.WALK_TARGET,
        walk.id,
        session_kind=walk.session_kind,
        ticket_id=walk.ticket_id,
        ticket_kind=walk.ticket_kind,
        **details,
    )
    if walk.status != WalkStatus.ACTIVE:  # on the engineers' feed: their screens catch up when this commits
        await feed.announce(db, actor.account_id)


@overload
def check_len(value: str, cap: int, what: str, *, single_line: bool = False) -> str: ...


@overload
def check_len(value: str | None, cap: int, what: str, *, single_line: bool = False) -> str | None: ...


def check_len(value: str | None, cap: int, what: str, *, single_line: bool = False) -> str | None:
    """``value`` cleaned for storing (see ``fields.accepted``), or PayloadTooLarge over ``cap``."""
    if value is None:
        return None
    value = accepted(value, what, single_line=single_line)
    if len(value) > cap:
        raise PayloadTooLarge(f"{what} is {len(value):,} characters; the limit is {cap:,}")
    return value


def check_ticket_kind(kind: str) -> None:
    if kind not in tuple(TicketKind):
        raise ValidationFailed(f"ticket_kind must be {values(TicketKind)}, not '{kind}'")


async def get_session(db: AsyncSession, *, actor: User, session_id: int) -> L1WalkSession:
    """The session if it belongs to the actor's account; NotFound otherwise (same message)."""
    await authorize(db, actor, Need.MEMBER, "read walks")
    return await load_walk(db, actor, session_id)


async def load_walk(db: AsyncSession, actor: User, session_id: int, lock: bool = False) -> L1WalkSession:
    return await get_in_account(
        db,
        L1WalkSession,
        actor.account_id,
        id=session_id,
        lock=lock,
        missing=f"walk session {session_id} does not exist",
    )


async def active_walk(
    db: AsyncSession,
    actor: User,
    session_id: int,
    kinds: tuple[WalkKind, ...] | None = None,
    version: int | None = None,
) -> L1WalkSession:
    """The session, locked, if the actor may walk and it is active, of one of ``kinds``
    and (when the caller passes one) still at ``version``."""
    await authorize(db, actor, Need.WALK, "walk tickets")
    walk = await load_walk(db, actor, session_id, lock=True)
    if walk.status != WalkStatus.ACTIVE:
        raise InvalidState(f"walk session {session_id} is {walk.status}, not active")
    if kinds and walk.session_kind not in kinds:
        raise InvalidState(
            f"walk session {session_id} is an {walk.session_kind} session; this needs " + " or ".join(kinds)
        )
    check_version(walk, version)
    return walk


def check_version(walk: L1WalkSession, version: int | None) -> None:
    if version is not None and walk.version != version:
        raise StaleWalk("this walk moved on in another window since you saw it; refresh it and answer again")


def mark_moved(walk: L1WalkSession) -> None:
    """The walk's position changed: windows holding an older version are refused."""
    walk.version = (walk.version or 0) + 1
    walk.last_step_at = utcnow()


def append_step(db: AsyncSession, walk: L1WalkSession, step: WalkStep) -> int:
    """Record ``step`` as one new row (never a rewrite of the path) and move the walk to it;
    inside the caller's write transaction. Its position in the walk, from 1."""
    mark_moved(walk)
    step = step.answered_at(walk.last_step_at or utcnow())
    walk.current_node_id = step.node_id
    walk.step_note_draft = None  # whatever was being typed went with this answer, or belongs to no step now
    return add_step_row(db, walk, step)


async def refuse_second_walk(db: AsyncSession, actor: User, ticket_kind: str, ticket_id: str, instead: str) -> None:
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
    kind = WALK_KIND_NAMES.get(existing.session_kind, "")
    raise WalkInProgress(
        f"ticket {ticket_id} already has {whose} unfinished walk ({kind}): {instead}",
        session_id=row_id(existing),
        owner_user_id=existing.created_by_user_id,
        yours=yours,
    )


async def require_open_ticket(db: AsyncSession, actor: User, ticket_kind: str, ticket_id: str, doing: str) -> None:
    """A closed internal ticket is reopened first (``rflow tickets reopen``), never closed over."""
    if ticket_kind != TicketKind.INTERNAL:
        return
    ticket = await tickets.get_ticket(db, actor.account_id, ticket_id)
    if ticket.status not in OPEN_TICKET_STATUSES:
        raise InvalidState(
            f"ticket {ticket_id} is {ticket.status}; reopen it (`rflow tickets reopen {ticket_id}`) before {doing}"
        )
