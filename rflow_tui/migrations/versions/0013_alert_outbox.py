"""the alert outbox: what an escalation owes the desk's alert destinations, each sent once

Revision ID: 0013
Revises: 0012

One row per escalation (a unique ``session_id``), written in the escalation's transaction:
the facts the alert is made of, its key, and which destinations (fingerprints of their
URLs, never the URLs) have it. On PostgreSQL it is account-scoped like every such table, and
its role rules (rls.py ``ROLE_RULES``) let a person queue a row only for a walk they
escalate in that same transaction, as new, and change afterwards only its delivery columns
(a column grant).
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

from rflow_tui.migrations.rls import protect_account_tables

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    when = sqlmodel.sql.sqltypes.UTCDateTime
    op.create_table(
        "alert_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", text(length=64), nullable=False),
        sa.Column("reason_category", text(length=40), nullable=False),
        sa.Column("priority", text(length=80), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("idempotency_key", text(length=64), nullable=False),
        sa.Column("state", text(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", when(), nullable=False),
        sa.Column("last_error", text(), nullable=True),
        sa.Column("sent_to", sa.JSON(), nullable=False),
        sa.Column("created_at", when(), nullable=False),
        sa.Column("delivered_at", when(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"]),
        sa.ForeignKeyConstraint(["session_id"], ["l1_walk_session.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("session_id", name="uq_alert_outbox_session"),
    )
    op.create_index("ix_alert_outbox_account_id", "alert_outbox", ["account_id"])
    op.create_index("ix_alert_outbox_due", "alert_outbox", ["account_id", "state", "next_attempt_at"])
    protect_account_tables(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_alert_outbox_due", table_name="alert_outbox")
    op.drop_index("ix_alert_outbox_account_id", table_name="alert_outbox")
    op.drop_table("alert_outbox")
