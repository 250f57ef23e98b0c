"""Who is at the keyboard, and may they be the user ``--user`` names.

PostgreSQL: each person connects as their own database role, bound to their rflow user
by ``user.db_role`` (which the server honours only for a role made for that user's
account: ``check_role``, migrations/rls.py); the server's row-level security (migrations/rls.py) keeps the role
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

from rflow_tui.migrations.rls import PEOPLE_ROLE, ROLE_CLAIMS, STANDING
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
    user_id = (await _sql(db, "SELECT rflow_session_user_id()")).scalar()
    bound = await db.get(User, user_id) if user_id is not None else None
    if bound is not None:
        if email and email.strip().lower() != bound.email.lower():
            raise AccessDenied(
                f"you are connected as database role '{role}', which is {bound.email}; "
                f"--user {email} names someone else"
            )
        return bound
    standing = (await _sql(db, f"SELECT email, standing FROM {STANDING}()")).first()
    if standing is not None:  # bound, but deactivated or deleted: row-level security shows it nothing
        fix = (
            f"an owner or admin can reactivate them (`rflow users reactivate {standing.email}`)"
            if standing.standing == "deactivated"
            else "ask an owner or admin for a new account"
        )
        raise AccessDenied(
            f"you are connected as database role '{role}', which is {standing.email}, "
            f"and {standing.email} is {standing.standing}: {fix}"
        )
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
    named = [u for u in mine if u.email.lower() == email.strip().lower()]
    user = named[0] if len(named) == 1 else await _by_email(db, email)
    if user.os_login and user.os_login != login:
        raise AccessDenied(f"{user.email} is bound to the OS login '{user.os_login}'; you are logged in as '{login}'")
    if mine and user.os_login != login:
        names = ", ".join(u.email for u in mine)
        raise AccessDenied(f"the OS login '{login}' is bound to {names}; --user {email} names someone else")
    return user


async def _by_email(db: AsyncSession, email: str | None) -> User:
    if not email:
        raise NotFound(NO_USER)
    users = list(await db.exec(select(User).where(func.lower(User.email) == email.strip().lower()).limit(2)))
    if len(users) > 1:  # an email is unique within an account, not across a shared database
        raise AccessDenied(
            f"{email} is a user in more than one account on this database: on PostgreSQL connect as "
            "their own database role; on SQLite bind each to their OS login (`rflow users bind EMAIL --os-login NAME`)"
        )
    if not users:
        if (await db.exec(select(User.id).limit(1))).first() is None:
            raise NotFound(f"no user {email}: {NO_DESK}")
        raise NotFound(
            f"no user {email}; an owner or admin adds them with "
            f"`rflow --user THEIR_EMAIL users add {email} --role l1_tech`"
        )
    return users[0]


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
    """A login role for one person of the actor's account, member of the people group and nothing else.

    No superuser, no CREATEDB, no CREATEROLE: the group's grants (read and write rows,
    never delete or change the schema) and the row-level security policies are all it
    gets. The password is generated here and only its SCRAM verifier goes to the server,
    so neither the server's log nor a DBA ever sees it. The role is recorded as made for
    the actor's account (``account_db_role``), in the same transaction; only then does the
    server honour a binding to it. When the connected role may not create roles, the SQL
    a DBA runs is returned instead. An existing role is accepted only as ``check_role``
    says.
    """
    from rflow_tui.services.access import Need, authorize

    await authorize(db, actor, Need.MANAGE, "give people database roles")
    await check_binding(db, db_role=role, os_login=None)
    state = await check_role(db, role=role, account_id=actor.account_id)
    if state == "ours":
        outcome = RoleOutcome(role, existed=True)
        if not await _try(db, f'GRANT {PEOPLE_ROLE} TO "{role}"'):
            outcome.sql_for_dba = f'GRANT {PEOPLE_ROLE} TO "{role}";'
        return outcome
    claim = f"INSERT INTO {ROLE_CLAIMS} (role_name, account_id) VALUES ('{role}', {int(actor.account_id)})"
    if state == "claimable":  # the DBA, binding a role they made for this account
        done = await _try(db, claim, f'GRANT {PEOPLE_ROLE} TO "{role}"')
        return RoleOutcome(role, existed=True, sql_for_dba=None if done else f"{claim};")
    password = secrets.token_urlsafe(18)
    statements = [
        f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION '
        f"PASSWORD '{scram_verifier(password)}'",
        f'GRANT {PEOPLE_ROLE} TO "{role}"',
        claim,
    ]
    if await _try(db, *statements):
        return RoleOutcome(role, created=True, password=password)
    return RoleOutcome(role, password=password, sql_for_dba=";\n".join(statements) + ";")


# An existing role: does it hold more than a person's rights, and which account was it made for
# (row-level security shows a person's role only its own account's records; the DBA sees all).
_ROLE_STATE = f"""
SELECT r.rolsuper OR r.rolbypassrls OR r.rolcreaterole OR r.rolcreatedb OR r.rolreplication
       OR pg_has_role(r.oid, c.relowner, 'MEMBER') AS powerful,
       (SELECT k.account_id FROM {ROLE_CLAIMS} k WHERE k.role_name = r.rolname) AS claimed_by,
       (SELECT s.rolsuper OR pg_has_role(session_user, c.relowner, 'MEMBER')
        FROM pg_roles s WHERE s.rolname = session_user) AS dba
FROM pg_roles r, pg_class c
WHERE r.rolname = :r AND c.oid = to_regclass('"user"')
"""


async def check_role(db: AsyncSession, *, role: str, account_id: int) -> str:
    """May ``role`` be bound to a person of ``account_id``? "new": no such role yet (rflow or
    a DBA makes it, recorded for this account); "ours": made for this account; "claimable":
    made by the DBA, who is connected and records it now. Any other role is refused with one
    answer, whether it was made for another account or for none: what a role name says
    about other accounts stays with the DBA (SECURITY.md)."""
    row = (await _sql(db, _ROLE_STATE, r=role)).first()
    if row is None:
        return "new"
    if row.powerful:
        raise ValidationFailed(
            f"the database role {role} holds more rights than a person's (superuser, CREATEROLE, "
            "CREATEDB, BYPASSRLS, or it administers rflow's tables); rflow binds people only to roles "
            f"whose rights come from {PEOPLE_ROLE}"
        )
    if row.claimed_by == account_id:
        return "ours"
    if row.claimed_by is None and row.dba:
        return "claimable"
    raise ValidationFailed(
        f"the database role {role} was not made for this account, so it cannot be bound here: "
        "choose another name with --db-role (rflow creates it), or, if the DBA made this role for "
        f"this account, they record it: INSERT INTO {ROLE_CLAIMS} (role_name, account_id) "
        f"VALUES ('{role}', {int(account_id)});"
    )


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


# --- who could not log in (PostgreSQL) -----------------------------------------------------

# pg_roles is every login's to read; which account a role was made for, row-level security shows
# only for the reader's own account, so "not made for this account" says nothing of any other.
_ROLE_STANDING = f"""
SELECT r.rolname AS name, r.rolcanlogin AS can_login, pg_has_role(r.oid, '{PEOPLE_ROLE}', 'MEMBER') AS in_people,
       EXISTS (SELECT 1 FROM {ROLE_CLAIMS} k WHERE k.role_name = r.rolname AND k.account_id = :account) AS ours
FROM pg_roles r WHERE r.rolname = ANY(:names)
"""


async def role_problems(db: AsyncSession, *, actor: User, users: list[User]) -> dict[int, str]:
    """PostgreSQL: for each active person of ``users`` whose database role would not let them in
    (never bound, never made, not made for this account, outside the people group, no login),
    what is wrong and what to do, by user id. Empty on SQLite (OS logins are not roles)."""
    if not is_postgres(db):
        return {}
    people = [u for u in users if u.is_active and u.deleted_at is None and u.account_id == actor.account_id]
    names = sorted({u.db_role for u in people if u.db_role})
    rows = (await _sql(db, _ROLE_STANDING, account=actor.account_id, names=names)).all() if names else []
    found = {row.name: row for row in rows}
    problems: dict[int, str] = {}
    for user in people:
        problem = _role_problem(user, found.get(user.db_role) if user.db_role else None)
        if problem:
            problems[int(user.id or 0)] = problem
    return problems


def _role_problem(user: User, row: Any) -> str | None:
    role, email = user.db_role, user.email
    if not role:
        fix = f"rflow users bind {email} --db-role {default_db_role(email)}"
        return f"no database role: cannot log in; `{fix}` makes one (or prints the SQL a DBA runs)"
    if row is None:
        return (
            f"database role {role} was never made: cannot log in until it is; `rflow users bind {email} "
            f"--db-role {role}` makes it (or prints the SQL a DBA runs)"
        )
    if not row.ours:
        return (
            f"database role {role} was not made for this account: it logs in as nobody here; bind another "
            f"name (`rflow users bind {email} --db-role NEW_NAME`), or, if the DBA made it for this account, "
            f"they record it: INSERT INTO {ROLE_CLAIMS} (role_name, account_id) VALUES ('{role}', {user.account_id});"
        )
    if not row.in_people:
        grant = f"GRANT {PEOPLE_ROLE} TO {role};"
        return f"database role {role} is not in {PEOPLE_ROLE}, so it sees nothing: a DBA runs {grant}"
    if not row.can_login:
        return f"database role {role} may not log in: a DBA runs ALTER ROLE {role} LOGIN;"
    return None
