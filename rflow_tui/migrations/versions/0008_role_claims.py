"""no squatting, no oracles: which account a database role was made for; a secret feed channel

Revision ID: 0008
Revises: 0007

- ``account_db_role`` records which account each person's database role was made for (by
  rflow when it creates the role, or by the DBA). The server honours ``user.db_role`` only
  when it names a role made for that user's account (migrations/rls.py ``bound_person``),
  so binding a role name of another account, or one nobody has made yet, captures nobody.
  Existing bindings are recorded for their account.
- ``user.email`` and ``user.db_role`` are unique within an account, not across the server:
  an owner adding ``bob@x`` or binding ``bob`` learns nothing about other accounts.
- PostgreSQL: ``account.feed_channel``, a random name for the account's live-feed
  ``LISTEN`` channel, readable only by the account's own people (row-level security);
  PostgreSQL cannot restrict who listens on or notifies a channel, only who knows its name.
"""

import sqlalchemy as sa
from alembic import op

from rflow_tui.migrations.rls import ROLE_CLAIMS, protect_account_tables

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SQLITE_UNNAMED = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def upgrade() -> None:
    conn = op.get_bind()
    postgres = conn.dialect.name == "postgresql"
    op.create_table(
        ROLE_CLAIMS,
        sa.Column("role_name", sa.String(length=63), primary_key=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("account.id"), nullable=False, index=True),
        sa.Column("created_at", sa.DateTime(), nullable=False, server_default=sa.func.now()),
    )
    op.execute(
        f'INSERT INTO {ROLE_CLAIMS} (role_name, account_id) SELECT db_role, account_id FROM "user" '
        "WHERE db_role IS NOT NULL"
    )
    if postgres:
        op.execute('ALTER TABLE "user" DROP CONSTRAINT IF EXISTS user_email_key')
        op.drop_index("ix_user_db_role", table_name="user")
        op.execute(
            "ALTER TABLE account ADD COLUMN feed_channel text NOT NULL "
            "DEFAULT replace(gen_random_uuid()::text, '-', '')"
        )
    else:
        with op.batch_alter_table("user", naming_convention=SQLITE_UNNAMED) as batch_op:
            batch_op.drop_constraint("uq_user_email", type_="unique")
            batch_op.drop_index("ix_user_db_role")
    op.create_index("ix_user_db_role", "user", ["db_role"])
    op.create_index("ux_user_account_db_role", "user", ["account_id", "db_role"], unique=True)
    op.create_index("ux_user_account_email", "user", ["account_id", sa.text("lower(email)")], unique=True)
    protect_account_tables(conn)


def downgrade() -> None:
    conn = op.get_bind()
    op.drop_index("ux_user_account_email", table_name="user")
    op.drop_index("ux_user_account_db_role", table_name="user")
    op.drop_index("ix_user_db_role", table_name="user")
    with op.batch_alter_table("user") as batch_op:
        batch_op.create_index("ix_user_db_role", ["db_role"], unique=True)
        batch_op.create_unique_constraint("user_email_key", ["email"])
    if conn.dialect.name == "postgresql":
        op.execute("ALTER TABLE account DROP COLUMN feed_channel")
    op.drop_table(ROLE_CLAIMS)
    protect_account_tables(conn)
