"""Users and roles: logging in, adding and changing people, who gets notified.

Who may do what is decided in ``services.access``."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rflow_tui.domain.enums import ENGINEER_ROLES, Role, values
from rflow_tui.models import Account, User, row_id
from rflow_tui.services import audit
from rflow_tui.services.access import Need, authorize
from rflow_tui.services.errors import AccessDenied, NotFound, ValidationFailed
from rflow_tui.services.fields import accepted_line
from rflow_tui.services.identity import check_binding, check_role


async def find_login(db: AsyncSession, email: str | None) -> User:
    """The user for ``email`` if this connection may act as them and they may log in (detached);
    otherwise an error saying how to fix it. Who may be named: see ``services.identity``."""
    from rflow_tui.services.identity import resolve_login

    user = await resolve_login(db, email)
    email = user.email
    if user.deleted_at is not None:
        raise AccessDenied(f"{email} has been deleted; ask an owner or admin for a new account")
    if not user.is_active:
        raise AccessDenied(f"{email} is deactivated; an owner or admin can reactivate them")
    db.expunge(user)  # a plain value from here on: no later rollback can expire it
    return user


async def account_count(db: AsyncSession) -> int:
    """How many accounts the database holds (that many desks share it): 0 on a new one."""
    return int((await db.exec(select(func.count()).select_from(Account))).one())


async def create_account(db: AsyncSession, *, name: str, owner_email: str, owner_name: str = "") -> User:
    """A new desk and its first owner, in one transaction."""
    name = accepted_line(name, "the account name")
    if not name:
        raise ValidationFailed("the account needs a name")
    account = Account(name=name)
    db.add(account)
    await db.flush()
    owner = await _add(db, row_id(account), owner_email, owner_name, Role.OWNER, False)
    await audit.record(
        db,
        account_id=row_id(account),
        actor_user_id=owner.id,
        action="account.create",
        target_type="account",
        target_id=account.id,
        name=account.name,
        owner_email=owner.email,
    )
    await db.commit()
    return owner


async def add_user(
    db: AsyncSession,
    *,
    actor: User,
    email: str,
    name: str = "",
    role: str = Role.L1_TECH,
    coverage: bool = False,
    db_role: str | None = None,
    os_login: str | None = None,
) -> User:
    """A new person in the actor's account, bound to a database role or an OS login if given."""
    await authorize(db, actor, Need.MANAGE, "add users")
    await check_binding(db, db_role=db_role, os_login=os_login)
    if db_role is not None:
        await check_role(db, role=db_role, account_id=actor.account_id)
    user = await _add(db, actor.account_id, email, name, role, coverage, db_role=db_role, os_login=os_login)
    await _audit(db, actor, user, "user.add", role=user.account_role, coverage=user.coverage)
    await db.commit()
    return user


async def bind_user(
    db: AsyncSession,
    *,
    actor: User,
    email: str,
    db_role: str | None = None,
    os_login: str | None = None,
    clear: bool = False,
) -> User:
    """Owners and admins bind a person to the database role or OS login they use (audited);
    ``clear`` removes both bindings."""
    await authorize(db, actor, Need.MANAGE, "bind users")
    await check_binding(db, db_role=db_role, os_login=os_login)
    if db_role is not None:
        await check_role(db, role=db_role, account_id=actor.account_id)
    user = await _member(db, actor, email)
    if db_role is not None:
        await _role_free(db, user, db_role)
    if clear:
        user.db_role = user.os_login = None
    if db_role is not None:
        user.db_role = db_role
    if os_login is not None:
        user.os_login = os_login
    db.add(user)
    await _flush_unique(db, user.email, user.db_role)
    await _audit(db, actor, user, "user.bind", db_role=user.db_role, os_login=user.os_login)
    await db.commit()
    return user


async def update_user(
    db: AsyncSession,
    *,
    actor: User,
    email: str,
    coverage: bool | None = None,
    active: bool | None = None,
    role: str | None = None,
) -> User:
    """Owners and admins change a user's role or L1 coverage, or deactivate / reactivate them.

    Each change is its own audit entry; asking for what is already so changes nothing
    and records nothing. Only an owner makes or unmakes owners, and nobody changes
    their own role or deactivates themselves (a desk must keep someone who can fix it).
    """
    await authorize(db, actor, Need.MANAGE, "change users")
    user = await _member(db, actor, email)
    if role is not None and role != user.account_role:
        _check_role_change(actor, user, role)
        await _audit(db, actor, user, "user.role", old=user.account_role, new=role)
        user.account_role = role
        if role != Role.ENGINEER and user.coverage:
            user.coverage = False
            await _audit(db, actor, user, "user.coverage", coverage=False, why="no longer an engineer")
    if coverage is not None and coverage != user.coverage:
        if coverage and user.account_role != Role.ENGINEER:
            raise ValidationFailed("only engineers carry the L1 coverage flag")
        user.coverage = coverage
        await _audit(db, actor, user, "user.coverage", coverage=coverage)
    if active is not None and active != user.is_active:
        if not active and user.id == actor.id:
            raise ValidationFailed("you cannot deactivate yourself")
        user.is_active = active
        await _audit(db, actor, user, "user.reactivate" if active else "user.deactivate")
    db.add(user)
    await db.commit()
    return user


async def _member(db: AsyncSession, actor: User, email: str) -> User:
    user = (
        await db.exec(
            select(User).where(User.account_id == actor.account_id, func.lower(User.email) == email.strip().lower())
        )
    ).first()
    if user is None:
        raise NotFound(f"no user {email} in this account")
    return user


def _check_role_change(actor: User, user: User, role: str) -> None:
    if role not in set(Role):
        raise ValidationFailed(f"role must be one of {values(Role)}, not '{role}'")
    if user.id == actor.id:
        raise ValidationFailed("you cannot change your own role; ask another owner or admin")
    if Role.OWNER in (role, user.account_role) and actor.account_role != Role.OWNER:
        raise AccessDenied("only owners may make or unmake owners")


async def _audit(db: AsyncSession, actor: User, user: User, action: str, **details: object) -> None:
    await audit.record_change(
        db,
        actor,
        action,
        "user",
        user.id,
        email=user.email,
        **details,
    )


async def list_users(db: AsyncSession, *, actor: User) -> list[User]:
    await authorize(db, actor, Need.MEMBER, "list users")
    return list(await db.exec(select(User).where(User.account_id == actor.account_id).order_by(User.email)))


async def _add(
    db: AsyncSession,
    account_id: int,
    email: str,
    name: str,
    role: str,
    coverage: bool,
    db_role: str | None = None,
    os_login: str | None = None,
) -> User:
    email = accepted_line(email, "the email")
    name = accepted_line(name, "the name")
    if "@" not in email or len(email) > 320:
        raise ValidationFailed(f"'{email}' is not an email address")
    if role not in set(Role):
        raise ValidationFailed(f"role must be one of {values(Role)}, not '{role}'")
    if coverage and role != Role.ENGINEER:
        raise ValidationFailed("only engineers carry the L1 coverage flag")
    same = func.lower(User.email) == email.lower()
    if (await db.exec(select(User).where(User.account_id == account_id, same))).first():
        raise ValidationFailed(f"a user {email} already exists in this account")
    user = User(
        account_id=account_id,
        email=email,
        name=name,
        account_role=role,
        coverage=coverage,
        db_role=db_role,
        os_login=os_login,
    )
    if db_role is not None:
        await _role_free(db, user, db_role)
    db.add(user)
    await _flush_unique(db, email, db_role)
    return user


async def _role_free(db: AsyncSession, user: User, db_role: str) -> None:
    """A role binds one person of an account; who else in it has it is the account's own business."""
    clash = select(User).where(User.account_id == user.account_id, User.db_role == db_role)
    if user.id is not None:
        clash = clash.where(User.id != user.id)
    other = (await db.exec(clash)).first()
    if other is not None:
        raise ValidationFailed(f"the database role {db_role} is already bound to {other.email} in this account")


async def _flush_unique(db: AsyncSession, email: str, db_role: str | None) -> None:
    """Flush, turning a clash (a change committed since the checks above, in this account:
    emails and roles are unique per account, so no other account's rows can clash) into words."""
    from sqlalchemy.exc import IntegrityError

    try:
        await db.flush()
    except IntegrityError as exc:
        await db.rollback()
        if db_role and "db_role" in str(exc.orig):
            raise ValidationFailed(f"the database role {db_role} is already bound to a user in this account") from None
        raise ValidationFailed(f"a user {email} already exists in this account") from None


async def escalation_recipients(db: AsyncSession, account_id: int) -> list[User]:
    """Active, not deleted owners/admins/engineers of this account."""
    rows = await db.exec(
        select(User)
        .where(
            User.account_id == account_id,
            col(User.account_role).in_(ENGINEER_ROLES),
            col(User.is_active).is_(True),
            col(User.deleted_at).is_(None),
        )
        .order_by(col(User.id))
    )
    return list(rows)
