"""What the server refused a person's role, in words: who is connected and which role may do it.

On PostgreSQL each person connects as their own role, and the server, not the app, refuses
what that role may not do (``migrations/rls.py``). Commands such as ``rflow init`` are the
DBA's; run from a person's role they fail at the server with "permission denied", which a
person should read as what is wrong and whom to ask, never as a traceback.
"""

from __future__ import annotations

from typing import Any

from rflow_tui.services.errors import AccessDenied

INSUFFICIENT_PRIVILEGE = "42501"  # SQLSTATE: permission denied, and rows row-level security refuses

# The connected role, the person it is bound to (if any), the role that owns rflow's tables,
# and whether the connected role administers them (the DBA: superuser or that owner's member).
_WHO = """
SELECT session_user::text, (SELECT email FROM rflow_session_standing() LIMIT 1),
       pg_get_userbyid(c.relowner)::text,
       r.rolsuper OR pg_has_role(session_user, c.relowner, 'MEMBER')
FROM pg_class c, pg_roles r WHERE c.oid = to_regclass('"user"') AND r.rolname = session_user
"""


async def refuse_unless_dba(db: Any, what: str) -> None:
    """Before a command that is the DBA's alone (``rflow init``): on PostgreSQL, a person's role
    is told so at once, rather than whatever the first statement the server refuses says."""
    from sqlalchemy import text

    if db.get_bind().dialect.name != "postgresql":
        return
    role, person, owner, dba = (await (await db.connection()).execute(text(_WHO))).one()
    if not dba:
        raise AccessDenied(_message(what, role, person, owner, "it is not the DBA's role"))


def _message(what: str, role: str, person: str | None, owner: str, cause: str) -> str:
    who = f"database role '{role}'" + (f" ({person})" if person else "")
    return (
        f"the database refused {what} to {who}: {cause}. Nothing was changed. {what[:1].upper()}{what[1:]} "
        f"is for the DBA: the role that owns rflow's tables ('{owner}') or a superuser. A person's role "
        "holds only what their rflow role allows; an owner or admin adds people to their own account "
        "with `rflow users add`"
    )


async def refused_by_server(engine: Any, exc: Exception, what: str) -> str | None:
    """The message for a privilege the server refused, or None if ``exc`` is something else."""
    orig = getattr(exc, "orig", None)
    if getattr(orig, "sqlstate", None) != INSUFFICIENT_PRIVILEGE:
        return None
    from sqlalchemy import text

    from rflow_tui.db import _cause

    try:
        async with engine.connect() as conn:
            role, person, owner, _dba = (await conn.execute(text(_WHO))).one()
    except Exception:  # the server is gone as well: say what it said, nothing more
        return f"the database refused {what} ({_cause(exc)}); nothing was changed"
    return _message(what, role, person, owner, _cause(exc))
