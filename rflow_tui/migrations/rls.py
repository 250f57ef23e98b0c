"""Row-level security on PostgreSQL: a connected person's role sees only its own account.

Each person connects as their own database role, a member of ``PEOPLE_ROLE``. The
``user.db_role`` column binds a role to an rflow user; ``rflow_session_account()``
(SECURITY DEFINER, owned by the schema owner) turns ``session_user`` into that user's
account, and every account-scoped table gets a policy keeping rows to it. The schema
owner (the role that runs migrations) owns the tables and so is not subject to the
policies: it stays the desk's administrator.

A migration that adds an account-scoped table calls ``protect_account_tables`` again
(it is idempotent); tests/test_identity_postgres.py fails for any table it missed.
"""

from __future__ import annotations

PEOPLE_ROLE = "rflow_people"

# Tables a person may add to and read, but never change: the audit trail.
APPEND_ONLY = frozenset({"audit_log"})

_FUNCTIONS = [
    f"""CREATE OR REPLACE FUNCTION rflow_session_{name}() RETURNS {kind}
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
        SELECT {column} FROM "user" WHERE db_role = session_user AND is_active AND deleted_at IS NULL
    $$"""
    for name, kind, column in (("account", "integer", "account_id"), ("role", "text", "account_role"))
] + [f"REVOKE ALL ON FUNCTION rflow_session_{name}() FROM PUBLIC" for name in ("account", "role")]

# Created when the migrating role may (CREATEROLE); otherwise a DBA creates it (README).
_PEOPLE = f"""
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{PEOPLE_ROLE}') THEN
        CREATE ROLE {PEOPLE_ROLE} NOLOGIN;
    END IF;
EXCEPTION WHEN insufficient_privilege OR duplicate_object OR unique_violation THEN
    NULL;
END $$;
"""


def account_tables(conn) -> list[str]:
    """Every table of the current schema with an ``account_id`` column."""
    rows = conn.exec_driver_sql(
        "SELECT table_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND column_name = 'account_id' ORDER BY table_name"
    )
    return [row[0] for row in rows]


def protect_account_tables(conn) -> None:
    """Policies, grants and the people role, for every account-scoped table there is now."""
    if conn.dialect.name != "postgresql":
        return
    for statement in _FUNCTIONS:  # asyncpg takes one statement at a time
        conn.exec_driver_sql(statement)
    conn.exec_driver_sql(_PEOPLE)
    has_people = conn.exec_driver_sql(f"SELECT 1 FROM pg_roles WHERE rolname = '{PEOPLE_ROLE}'").first()
    _policy(conn, "account", "id", writes=False)
    for table in account_tables(conn):
        _policy(conn, table, "account_id", writes=True)
    _restrict_user_writes_to_admins(conn)
    if has_people:
        _grant(conn)


def _policy(conn, table: str, column: str, *, writes: bool) -> None:
    conn.exec_driver_sql(f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY')
    conn.exec_driver_sql(f'DROP POLICY IF EXISTS rflow_own_account ON "{table}"')
    check = f" WITH CHECK ({column} = rflow_session_account())" if writes else ""
    conn.exec_driver_sql(
        f'CREATE POLICY rflow_own_account ON "{table}" USING ({column} = rflow_session_account()){check}'
    )


def _restrict_user_writes_to_admins(conn) -> None:
    """Within the account, only owners and admins add or change people (as the services say)."""
    for command, clause in (("INSERT", "WITH CHECK"), ("UPDATE", "USING")):
        name = f"rflow_admins_{command.lower()}_users"
        conn.exec_driver_sql(f'DROP POLICY IF EXISTS {name} ON "user"')
        conn.exec_driver_sql(
            f'CREATE POLICY {name} ON "user" AS RESTRICTIVE FOR {command} '
            f"{clause} (rflow_session_role() IN ('owner', 'admin'))"
        )


def _grant(conn) -> None:
    """Least privilege: read and write rows (never delete, never change the audit trail), no DDL."""
    conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA {_schema(conn)} TO {PEOPLE_ROLE}")
    conn.exec_driver_sql(f"GRANT SELECT ON account, alembic_version TO {PEOPLE_ROLE}")
    for table in account_tables(conn):
        privileges = "SELECT, INSERT" if table in APPEND_ONLY else "SELECT, INSERT, UPDATE"
        conn.exec_driver_sql(f'GRANT {privileges} ON "{table}" TO {PEOPLE_ROLE}')
    conn.exec_driver_sql(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {_schema(conn)} TO {PEOPLE_ROLE}")
    conn.exec_driver_sql(f"GRANT EXECUTE ON FUNCTION rflow_session_account(), rflow_session_role() TO {PEOPLE_ROLE}")


def _schema(conn) -> str:
    name = conn.exec_driver_sql("SELECT current_schema()").scalar()
    return '"' + name.replace('"', '""') + '"'
