"""the PSA outbox: what a walk's end owes the ticket's PSA, delivered exactly once

Revision ID: 0009
Revises: 0008

One row per walk that ended on a PSA ticket, written in the same transaction as the end:
the note to post (with its idempotency key) and which configured status to set. Account-
scoped like every such table: row-level security on PostgreSQL.
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

from rflow_tui.migrations.rls import protect_account_tables

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    when = sqlmodel.sql.sqltypes.UTCDateTime
    op.create_table(
        "psa_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("psa_system", text(length=40), nullable=False),
        sa.Column("ticket_id", text(length=64), nullable=False),
        sa.Column("outcome", text(length=20), nullable=False),
        sa.Column("note", text(), nullable=False),
        sa.Column("idempotency_key", text(length=64), nullable=False),
        sa.Column("state", text(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", when(), nullable=False),
        sa.Column("last_error", text(), nullable=True),
        sa.Column("psa_note_id", text(length=64), nullable=True),
        sa.Column("created_at", when(), nullable=False),
        sa.Column("delivered_at", when(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"]),
        sa.ForeignKeyConstraint(["session_id"], ["l1_walk_session.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_psa_outbox_account_id", "psa_outbox", ["account_id"])
    op.create_index("ix_psa_outbox_due", "psa_outbox", ["account_id", "state", "next_attempt_at"])
    protect_account_tables(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_psa_outbox_due", table_name="psa_outbox")
    op.drop_index("ix_psa_outbox_account_id", table_name="psa_outbox")
    op.drop_table("psa_outbox")
