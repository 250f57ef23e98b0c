"""Engineers working an escalation: what the detail pane shows about one escalated walk.

Every read and change is scoped to the actor's account and needs the REVIEW right
(owners, admins, engineers), checked afresh in the operation's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from rflow_tui.domain.enums import WalkStatus
from rflow_tui.models import L1WalkSession, Ticket, User
from rflow_tui.services import tickets
from rflow_tui.services.access import Need, authorize, get_in_account
from rflow_tui.services.errors import InvalidState


@dataclass
class EscalationDetail:
    """One escalation as the pane shows it: the walk and its ticket (None: a PSA
    ticket the desk does not hold, whose details are in the PSA)."""

    walk: L1WalkSession
    ticket: Ticket | None


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


async def escalation_detail(db: AsyncSession, *, actor: User, session_id: int) -> EscalationDetail:
    """The walk and its ticket, for every walk kind."""
    await authorize(db, actor, Need.REVIEW, "see escalations")
    walk = await _escalated(db, actor, session_id)
    ticket = await tickets.find_ticket(db, actor.account_id, walk.ticket_id)
    return EscalationDetail(walk=walk, ticket=ticket)
