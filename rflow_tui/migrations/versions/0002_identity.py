"""who is who: user.db_role and user.os_login; row-level security on PostgreSQL

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from rflow_tui.migrations.rls import PEOPLE_ROLE, protect_account_tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

POLICY_TABLES = ("account", "user", "ticket", "flow", "flowproposal", "l1_walk_session", "notification", "audit_log")


def upgrade() -> None:
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("db_role", sa.String(length=63), nullable=True))
        batch_op.add_column(sa.Column("os_login", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_user_db_role", ["db_role"], unique=True)
        batch_op.create_index("ix_user_os_login", ["os_login"], unique=False)
    protect_account_tables(op.get_bind())


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table in POLICY_TABLES:
            op.execute(f'DROP POLICY IF EXISTS rflow_own_account ON "{table}"')
            op.execute(f'ALTER TABLE "{table}" DISABLE ROW LEVEL SECURITY')
        op.execute('DROP POLICY IF EXISTS rflow_admins_insert_users ON "user"')
        op.execute('DROP POLICY IF EXISTS rflow_admins_update_users ON "user"')
        if bind.exec_driver_sql(f"SELECT 1 FROM pg_roles WHERE rolname = '{PEOPLE_ROLE}'").first():
            op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {PEOPLE_ROLE}")
        op.execute("DROP FUNCTION IF EXISTS rflow_session_account()")
        op.execute("DROP FUNCTION IF EXISTS rflow_session_role()")
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_index("ix_user_os_login")
        batch_op.drop_index("ix_user_db_role")
        batch_op.drop_column("os_login")
        batch_op.drop_column("db_role")
