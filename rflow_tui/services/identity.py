"""Who is at the keyboard, and may they be the user ``--user`` names.

PostgreSQL: each person connects as their own database role, bound to their rflow user
by ``user.db_role``; the server's row-level security (migrations/rls.py) keeps the role
to its account whatever SQL it runs, and here ``--user`` may name only the bound user.
A role bound to nobody may act as anyone only if it administers the schema (superuser,
or a member of the role owning the tables): that is the desk's DBA.

SQLite on one machine: a user may be bound to an OS login (``user.os_login``). A bound
user may be named only from that login, and a login that has users bound to it may name
only those. Anyone who can write the SQLite file can undo this; it stops casual
impersonation, and the file's permissions are the real boundary. Nothing is bound on a
fresh desk (the demo desk included), so nothing changes until an admin binds someone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import CursorResult, func, text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rflow_tui.migrations.rls import PEOPLE_ROLE
from rflow_tui.models import User
from rflow_tui.services.errors import AccessDenied, NotFound, ValidationFailed

ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
NO_USER = (
    "no user configured. New to rflow? `rflow init --account NAME --email YOU` sets up a desk and "
    "writes the config; `rflow demo` opens a demo desk. On an existing desk: pass --user EMAIL, set "
    "RFLOW_USER, or set `user` in the config file (`rflow config-path` prints where)"
)
NO_DESK = (
    "this database has no desk yet: `rflow init --account NAME --email YOU` sets one up "
    "(or `rflow demo` opens a demo desk)"
)


def is_postgres(db: AsyncSession) -> bool:
    return db.get_bind().dialect.name == "postgresql"


def current_os_login() -> str:
    """The login of the process's effective user id (not $USER, which anyone can set)."""
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):  # pragma: no cover - Windows, or a uid without a passwd entry
        import getpass

        return getpass.getuser()


async def resolve_login(db: AsyncSession, email: str | None) -> User:
    """The user this connection may act as, given the ``--user`` it asked for (may be empty)."""
    if is_postgres(db):
        return await _resolve_on_postgres(db, email)
    return await _resolve_on_this_machine(db, email)


async def _resolve_on_postgres(db: AsyncSession, email: str | None) -> User:
    role, administers = tuple((await _sql(db, _WHO_CONNECTS)).one())
    bound = (await db.exec(select(User).where(User.db_role == role))).first()
    if bound is not None:
        if email and email.strip().lower() != bound.email.lower():
            raise AccessDenied(
                f"you are connected as database role '{role}', which is {bound.email}; "
                f"--user {email} names someone else"
            )
        return bound
    if not administers:
        raise AccessDenied(
            f"database role '{role}' is not bound to an rflow user; an owner or admin binds it with "
            f"`rflow users bind EMAIL --db-role {role}`"
        )
    return await _by_email(db, email)


# The connected role, and whether it administers the schema (and so is the DBA, not a person).
_WHO_CONNECTS = """
SELECT session_user::text,
       r.rolsuper OR r.rolbypassrls OR pg_has_role(session_user, c.relowner, 'MEMBER')
FROM pg_roles r, pg_class c
WHERE r.rolname = session_user AND c.oid = to_regclass('"user"')
"""


async def _resolve_on_this_machine(db: AsyncSession, email: str | None) -> User:
    login = current_os_login()
    mine = list(await db.exec(select(User).where(User.os_login == login).order_by(col(User.id))))
    if not email:
        if len(mine) == 1:
            return mine[0]
        raise NotFound(NO_USER)
    user = await _by_email(db, email)
    if user.os_login and user.os_login != login:
        raise AccessDenied(f"{user.email} is bound to the OS login '{user.os_login}'; you are logged in as '{login}'")
    if mine and user.os_login != login:
        names = ", ".join(u.email for u in mine)
        raise AccessDenied(f"the OS login '{login}' is bound to {names}; --user {email} names someone else")
    return user


async def _by_email(db: AsyncSession, email: str | None) -> User:
    if not email:
        raise NotFound(NO_USER)
    user = (await db.exec(select(User).where(func.lower(User.email) == email.strip().lower()))).first()
    if user is None:
        if (await db.exec(select(User.id).limit(1))).first() is None:
            raise NotFound(f"no user {email}: {NO_DESK}")
        raise NotFound(
            f"no user {email}; an owner or admin adds them with "
            f"`rflow --user THEIR_EMAIL users add {email} --role l1_tech`"
        )
    return user


# --- bindings --------------------------------------------------------------------------


def default_db_role(email: str) -> str:
    """``tina.tech@contoso.example`` -> ``tina_tech``: a plain name that needs no quoting anywhere."""
    name = re.sub(r"[^a-z0-9_]", "_", email.split("@", 1)[0].lower())
    return (name if name[:1].isalpha() or name[:1] == "_" else f"u_{name}")[:63]


async def check_binding(db: AsyncSession, *, db_role: str | None, os_login: str | None) -> None:
    """A role only on PostgreSQL, a login only on SQLite; each well-formed."""
    postgres = is_postgres(db)
    if db_role is not None:
        if not postgres:
            raise ValidationFailed("--db-role applies to PostgreSQL; on SQLite bind an OS login (--os-login)")
        if not ROLE_NAME.fullmatch(db_role):
            raise ValidationFailed(
                f"'{db_role}' is not a database role name rflow uses: lower-case letters, digits and _, "
                "starting with a letter or _, at most 63"
            )
        if db_role == PEOPLE_ROLE:
            raise ValidationFailed(f"'{PEOPLE_ROLE}' is the group every person's role joins, not a person")
    if os_login is not None:
        if postgres:
            raise ValidationFailed("--os-login applies to SQLite; on PostgreSQL each person has a database role")
        if not os_login or len(os_login) > 64 or any(c.isspace() or not c.isprintable() for c in os_login):
            raise ValidationFailed(f"'{os_login}' is not an OS login name")


# --- database roles (PostgreSQL) ----------------------------------------------------------


@dataclass
class RoleOutcome:
    """What ``provision_role`` did: made the role, found it, or left SQL for a DBA to run."""

    role: str
    created: bool = False
    existed: bool = False
    password: str | None = None
    sql_for_dba: str | None = None


async def provision_role(db: AsyncSession, *, actor: User, role: str) -> RoleOutcome:
    """A login role for one person, member of the people group and nothing else.

    No superuser, no CREATEDB, no CREATEROLE: the group's grants (read and write rows,
    never delete or change the schema) and the row-level security policies are all it
    gets. The password is generated here and only its SCRAM verifier goes to the server,
    so neither the server's log nor a DBA ever sees it. When the connected role may not
    create roles, the SQL a DBA runs is returned instead.
    """
    from rflow_tui.services.access import Need, authorize

    await authorize(db, actor, Need.MANAGE, "give people database roles")
    await check_binding(db, db_role=role, os_login=None)
    exists = (await _sql(db, "SELECT 1 FROM pg_roles WHERE rolname = :r", r=role)).first()
    if exists:
        outcome = RoleOutcome(role, existed=True)
        if not await _try(db, f'GRANT {PEOPLE_ROLE} TO "{role}"'):
            outcome.sql_for_dba = f'GRANT {PEOPLE_ROLE} TO "{role}";'
        return outcome
    password = secrets.token_urlsafe(18)
    statements = [
        f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION '
        f"PASSWORD '{scram_verifier(password)}'",
        f'GRANT {PEOPLE_ROLE} TO "{role}"',
    ]
    if await _try(db, *statements):
        return RoleOutcome(role, created=True, password=password)
    return RoleOutcome(role, password=password, sql_for_dba=";\n".join(statements) + ";")


async def _try(db: AsyncSession, *statements: str) -> bool:
    """Run ``statements`` together; False (nothing done) if this role lacks the privilege."""
    from sqlalchemy.exc import DBAPIError

    await db.commit()
    try:
        for statement in statements:
            await (await db.connection()).exec_driver_sql(statement)  # DDL: no bind parameters
        await db.commit()
    except DBAPIError as exc:
        await db.rollback()
        if "permission denied" in str(exc.orig) or "must have" in str(exc.orig) or "privilege" in str(exc.orig):
            return False
        raise
    return True


async def _sql(db: AsyncSession, statement: str, **params: Any) -> CursorResult[Any]:
    return await (await db.connection()).execute(text(statement), params)


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """PostgreSQL's stored form of a SCRAM-SHA-256 password (RFC 5802/7677)."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(hashlib.sha256(client_key).digest())}:{b64(server_key)}"
