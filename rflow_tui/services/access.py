"""Who may do what, and "this row, in the actor's account": the two checks every service shares.

``authorize`` is the one permission check. It reads the acting user afresh, in the
caller's transaction, so a user deactivated (or whose coverage is revoked) while
the app is open is refused at their next step, not at their next start.
``in_account`` / ``get_in_account`` are the one way to load a row by its keys
without ever reaching into another desk.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, TypeVar

from sqlmodel import SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rflow_tui.domain.enums import ADMIN_ROLES, ENGINEER_ROLES, Role
from rflow_tui.models import User
from rflow_tui.services.errors import AccessDenied, NotFound, RightsChanged

Row = TypeVar("Row", bound=SQLModel)

L1_COVERAGE = "l1_coverage"


class Need(Enum):
    """What an operation needs of the person doing it."""

    MEMBER = "an active member of the desk"
    WALK = "the L1 surface: L1 techs and engineers with coverage"
    REVIEW = "owners, admins and engineers"
    MANAGE = "owners and admins"


def can_log_in(user: User) -> bool:
    return user.is_active and user.deleted_at is None


def acting_as(user: User) -> str | None:
    """The ``acting_as`` tag of a walk this user starts (call after ``authorize(.., Need.WALK)``)."""
    return L1_COVERAGE if user.account_role == Role.ENGINEER else None


def check(user: User, need: Need, doing: str = "do this") -> None:
    """AccessDenied, saying why and what would fix it, unless ``user`` has ``need``."""
    if not can_log_in(user):
        why = "has been deleted" if user.deleted_at is not None else "is deactivated"
        raise AccessDenied(f"{user.email} {why} and cannot {doing}")
    if need is Need.WALK:
        _check_walk(user)
    elif need is Need.REVIEW and user.account_role not in ENGINEER_ROLES:
        raise AccessDenied(f"only owners, admins and engineers may {doing}")
    elif need is Need.MANAGE and user.account_role not in ADMIN_ROLES:
        raise AccessDenied(f"only owners and admins may {doing}")


def has(user: User, need: Need) -> bool:
    try:
        check(user, need)
    except AccessDenied:
        return False
    return True


def _check_walk(user: User) -> None:
    if user.account_role == Role.L1_TECH or (user.account_role == Role.ENGINEER and user.coverage):
        return
    if user.account_role == Role.ENGINEER:
        raise AccessDenied(
            f"{user.email} is an engineer without L1 coverage; ask an owner or admin to run "
            f"`rflow users set-coverage {user.email} on`"
        )
    raise AccessDenied(
        f"{user.email} is an {user.account_role}; only L1 techs and engineers with coverage may walk tickets"
    )


async def authorize(db: AsyncSession, actor: User, need: Need, doing: str = "do this") -> User:
    """The acting user as the store holds them now, if they have ``need``.

    Call it inside the operation's transaction (for a write, after the write lock
    is taken) so the rights checked are the rights in force when the change commits.
    Refused: AccessDenied, or RightsChanged when ``actor`` (the copy the caller held,
    e.g. since sign-in) would have passed.
    """
    fresh = await in_account(db, User, actor.account_id, id=actor.id)
    if fresh is None:
        raise AccessDenied(f"{actor.email} no longer exists in this account")
    try:
        check(fresh, need, doing)
    except AccessDenied as refused:
        if not has(actor, need):
            raise
        db.expunge(fresh)  # the caller's rollback must not expire what the app reads next
        raise RightsChanged(
            f"Your access changed while rflow was open: {refused}. Nothing was saved.", user=fresh, need=need
        ) from None
    return fresh


# --- rows in the actor's account ---------------------------------------------------------


async def in_account(
    db: AsyncSession, model: type[Row], account_id: int, *, lock: bool = False, **keys: Any
) -> Row | None:
    """The ``model`` row matching ``keys`` in this account, or None.

    Always re-read from the store (a copy already in the session may be stale);
    with ``lock`` it is also locked for the caller's write transaction.
    """
    stmt = select(model).where(model.account_id == account_id)  # type: ignore[attr-defined]
    for name, value in keys.items():
        stmt = stmt.where(getattr(model, name) == value)
    if lock:
        stmt = stmt.with_for_update()
    return (await db.exec(stmt.execution_options(populate_existing=True))).first()


async def get_in_account(
    db: AsyncSession, model: type[Row], account_id: int, *, missing: str, lock: bool = False, **keys: Any
) -> Row:
    """Like ``in_account``, but NotFound(``missing``) when there is no such row here.

    A row of another account is reported missing too: nobody learns it exists.
    """
    row = await in_account(db, model, account_id, lock=lock, **keys)
    if row is None:
        raise NotFound(missing)
    return row
