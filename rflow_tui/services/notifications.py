"""Engineer notifications, and each person's inbox of them. An escalation is never silently dropped."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import ColumnElement, func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rflow_tui.db import write_transaction
from rflow_tui.domain.enums import ADMIN_ROLES
from rflow_tui.models import L1WalkSession, Notification, User, utcnow
from rflow_tui.services import audit
from rflow_tui.services.access import Need, authorize
from rflow_tui.services.users import escalation_recipients

log = logging.getLogger(__name__)

ESCALATED = "l1.session.escalated"
FALLBACK_ROLE_GROUP = "owner_admin"


async def notify_escalation(db: AsyncSession, account_id: int, payload: dict[str, Any]) -> list[Notification]:
    """One notification per active engineer-side user; with none, one to the owner/admin group.

    The group notification (no recipient user) is the default owner/admin recipient
    set: whoever next holds the owner or admin role in this account sees it.
    """
    recipients = await escalation_recipients(db, account_id)
    if not recipients:
        log.warning(
            "account %s has no active owner/admin/engineer: escalation of session %s goes to "
            "the owner/admin group inbox",
            account_id,
            payload.get("session_id"),
        )
        note = Notification(
            account_id=account_id,
            recipient_user_id=None,
            kind=ESCALATED,
            payload={**payload, "fallback": FALLBACK_ROLE_GROUP},
        )
        db.add(note)
        return [note]
    notes = [
        Notification(account_id=account_id, recipient_user_id=u.id, kind=ESCALATED, payload=payload) for u in recipients
    ]
    db.add_all(notes)
    return notes


# What an escalation's people hear of its fate: the tech who escalated it, when an
# engineer claims, comments, closes or reopens it; an engineer, when their claim is taken.
CLAIMED = "escalation.claimed"
COMMENTED = "escalation.commented"
CLOSED = "escalation.closed"
REOPENED = "escalation.reopened"
TAKEN_OVER = "escalation.taken_over"


def tell(
    db: AsyncSession, walk: L1WalkSession, actor: User, recipient_user_id: int | None, kind: str, about: str
) -> Notification | None:
    """A notification to one person about ``walk`` (none to the actor about their own doing)."""
    if recipient_user_id is None or recipient_user_id == actor.id:
        return None
    note = Notification(
        account_id=walk.account_id,
        recipient_user_id=recipient_user_id,
        kind=kind,
        payload={"session_id": walk.id, "ticket_id": walk.ticket_id, "problem_summary": about},
    )
    db.add(note)
    return note


# --- the inbox ------------------------------------------------------------------
#
# A person's inbox holds the notifications addressed to them and, for owners and admins,
# the group's (the fallback when a desk had nobody to notify). A group notification is
# one shared row: the first owner or admin to read it marks it read for the group.

INBOX_LIMIT = 100


def _addressed_to(user: User) -> ColumnElement[bool]:
    """``user``'s notifications, by the role they hold now (a demoted admin loses the group's)."""
    own = col(Notification.recipient_user_id) == user.id
    if user.account_role in ADMIN_ROLES:
        return or_(own, col(Notification.recipient_user_id).is_(None))
    return own


async def inbox(db: AsyncSession, *, actor: User, limit: int = INBOX_LIMIT) -> list[Notification]:
    """The actor's notifications, newest first, read or not."""
    user = await authorize(db, actor, Need.MEMBER, "read notifications")
    rows = await db.exec(
        select(Notification)
        .where(Notification.account_id == actor.account_id, _addressed_to(user))
        .order_by(col(Notification.created_at).desc(), col(Notification.id).desc())
        .limit(limit)
    )
    return list(rows)


async def unread_count(db: AsyncSession, *, actor: User) -> int:
    user = await authorize(db, actor, Need.MEMBER, "read notifications")
    count = await db.exec(
        select(func.count())
        .select_from(Notification)
        .where(
            Notification.account_id == actor.account_id,
            _addressed_to(user),
            col(Notification.read_at).is_(None),
        )
    )
    return int(count.one())


async def mark_read(db: AsyncSession, *, actor: User, notification_ids: list[int] | None = None) -> int:
    """Mark these (None: every) unread notifications of the actor's read; how many were. Audited."""
    async with write_transaction(db):
        user = await authorize(db, actor, Need.MEMBER, "read notifications")
        unread = select(col(Notification.id)).where(
            Notification.account_id == actor.account_id, _addressed_to(user), col(Notification.read_at).is_(None)
        )
        if notification_ids is not None:
            unread = unread.where(col(Notification.id).in_(notification_ids))
        ids = sorted(note_id for note_id in await db.exec(unread) if note_id is not None)
        if not ids:
            return 0
        await db.exec(update(Notification).where(col(Notification.id).in_(ids)).values(read_at=utcnow()))
        await audit.record_change(
            db,
            actor,
            "notification.read",
            "notification",
            ids[0] if len(ids) == 1 else None,
            notification_ids=ids,
        )
    return len(ids)
