"""the database is the boundary: safe definer functions, per-role writes, a server-written audit log

Revision ID: 0006
Revises: 0005

PostgreSQL only (SQLite has no roles; its file's permissions are the boundary). Re-running
``protect_account_tables`` with today's rules (migrations/rls.py) fixes an existing desk:
the session functions search ``pg_temp`` last and name the schema, so a temporary table
cannot stand in for ``user``; each role writes only what its services allow; and only
``rflow_audit_append`` (migrations/audit_sql.py) writes the audit log and its head.
"""

from alembic import op

from rflow_tui.migrations.rls import PEOPLE_ROLE, ROLE_RULES, protect_account_tables

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    protect_account_tables(op.get_bind())


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    for table, command, *_ in ROLE_RULES:
        if table == "user":  # the same rule 0002 made, under its new name
            continue
        conn.exec_driver_sql(f'DROP POLICY IF EXISTS rflow_role_{command.lower()} ON "{table}"')
    conn.exec_driver_sql("DROP FUNCTION IF EXISTS rflow_audit_append(integer, integer, text, text, text, text)")
    conn.exec_driver_sql("DROP FUNCTION IF EXISTS rflow_canonical_json(json)")
    conn.exec_driver_sql("DROP FUNCTION IF EXISTS rflow_json_string(text)")
    if conn.exec_driver_sql(f"SELECT 1 FROM pg_roles WHERE rolname = '{PEOPLE_ROLE}'").first():
        conn.exec_driver_sql(f"GRANT INSERT ON audit_log TO {PEOPLE_ROLE}")
        conn.exec_driver_sql(f"GRANT INSERT, UPDATE ON audit_head, escalation_comment TO {PEOPLE_ROLE}")
