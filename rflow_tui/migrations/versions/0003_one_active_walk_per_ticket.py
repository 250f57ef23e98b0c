"""one active walk per ticket, and a version counter on each walk

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 15:00:00

A partial unique index lets a ticket have at most one ``active`` walk (SQLite and
PostgreSQL both support ``WHERE`` on an index). A database written before it may
already hold two active walks on one ticket: all but the most recent are closed
as escalated, with a reason saying why, so an engineer sees them and nothing is
deleted. ``version`` counts the changes to a walk's position (steps, step-backs,
the served AI node, its end) for compare-and-set between windows.
"""

from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # the column types (sqlmodel.sql.sqltypes.UTCDateTime)
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

INDEX = "uq_active_walk_per_ticket"
SUPERSEDED = (
    "Closed when rflow started allowing one active walk per ticket: a newer walk on this "
    "ticket was still active. Check this walk's steps and notes against that one."
)


def _close_duplicate_active_walks() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            "SELECT id, account_id, ticket_kind, ticket_id FROM l1_walk_session WHERE status = 'active' "
            "ORDER BY account_id, ticket_kind, ticket_id, last_step_at DESC, id DESC"
        )
    ).fetchall()
    seen: set[tuple] = set()
    older: list[int] = []
    for walk_id, account_id, ticket_kind, ticket_id in rows:
        key = (account_id, ticket_kind, ticket_id)
        if key in seen:
            older.append(walk_id)
        seen.add(key)
    if not older:
        return
    walks = sa.table(
        "l1_walk_session",
        sa.column("id", sa.Integer()),
        sa.column("status", sa.String()),
        sa.column("escalation_reason", sa.String()),
        sa.column("escalation_reason_category", sa.String()),
        sa.column("resolved_at", sqlmodel.sql.sqltypes.UTCDateTime()),
    )
    conn.execute(
        walks.update()
        .where(walks.c.id.in_(older))
        .values(
            status="escalated",
            escalation_reason=SUPERSEDED,
            escalation_reason_category="other",
            resolved_at=datetime.now(UTC),
        )
    )


def upgrade() -> None:
    _close_duplicate_active_walks()
    with op.batch_alter_table("l1_walk_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="0"))
        batch_op.create_index(
            INDEX,
            ["account_id", "ticket_kind", "ticket_id"],
            unique=True,
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("l1_walk_session", schema=None) as batch_op:
        batch_op.drop_index(INDEX)
        batch_op.drop_column("version")
