"""engineers work escalations: who is on one, its outcome, its comments; an inbox index

Revision ID: 0005
Revises: 0004

``l1_walk_session`` gains (plain columns, as ``flow_id``: adding a foreign key would
make SQLite rebuild the table) who claimed an escalation and when, and who closed it,
when and with which outcome; ``escalation_comment`` holds the engineers' comments
on one (account-scoped: row-level security on PostgreSQL like every such table).
The notification index serves the inbox: a person's unread notifications.
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # the column types (sqlmodel.sql.sqltypes.UTCDateTime)
from alembic import op

from rflow_tui.migrations.rls import protect_account_tables

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COLUMNS = ("claimed_by_user_id", "claimed_at", "closed_by_user_id", "closed_at", "outcome", "outcome_notes")


def upgrade() -> None:
    with op.batch_alter_table("l1_walk_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by_user_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("claimed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("closed_by_user_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("closed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))
        batch_op.add_column(sa.Column("outcome_notes", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
    op.create_table(
        "escalation_comment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("author_user_id", sa.Integer(), nullable=False),
        sa.Column("body", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"]),
        sa.ForeignKeyConstraint(["session_id"], ["l1_walk_session.id"]),
        sa.ForeignKeyConstraint(["author_user_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_escalation_comment_thread", "escalation_comment", ["account_id", "session_id", "id"])
    op.create_index("ix_notification_inbox", "notification", ["account_id", "recipient_user_id", "read_at"])
    protect_account_tables(op.get_bind())  # escalation_comment is account-scoped: its policy and grants


def downgrade() -> None:
    op.drop_index("ix_notification_inbox", table_name="notification")
    op.drop_index("ix_escalation_comment_thread", table_name="escalation_comment")
    op.drop_table("escalation_comment")
    with op.batch_alter_table("l1_walk_session", schema=None) as batch_op:
        for column in COLUMNS:
            batch_op.drop_column(column)
