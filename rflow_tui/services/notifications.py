"""Engineer notifications. An escalation is never silently dropped."""

from __future__ import annotations

import logging
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from rflow_tui.models import Notification
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
