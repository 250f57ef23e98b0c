"""Audit entries, added to the caller's transaction so they commit with the change."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from rflow_tui.models import AuditLog


def record(
    db: AsyncSession,
    *,
    account_id: int,
    actor_user_id: int | None,
    action: str,
    target_type: str,
    target_id: Any,
    **details: Any,
) -> AuditLog:
    entry = AuditLog(
        account_id=account_id,
        actor_user_id=actor_user_id,
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        details=details,
    )
    db.add(entry)
    return entry
