"""audit chain: seq, prev_hash and row_hash on every audit row; one head per account

Existing rows are chained in the order they were written (by id), per account.

Revision ID: 0004
Revises: 0003
"""

from types import SimpleNamespace

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # the column types (sqlmodel.sql.sqltypes.UTCDateTime)
from alembic import op

from rflow_tui.domain.audit_chain import CHAINED_FIELDS, GENESIS, row_hash
from rflow_tui.migrations.rls import protect_account_tables

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

audit_log = sa.table(
    "audit_log",
    sa.column("id", sa.Integer()),
    sa.column("account_id", sa.Integer()),
    sa.column("seq", sa.Integer()),
    sa.column("actor_user_id", sa.Integer()),
    sa.column("action", sa.String()),
    sa.column("target_type", sa.String()),
    sa.column("target_id", sa.String()),
    sa.column("details", sa.JSON()),
    sa.column("created_at", sqlmodel.sql.sqltypes.UTCDateTime()),
    sa.column("prev_hash", sa.String()),
    sa.column("row_hash", sa.String()),
)
audit_head = sa.table(
    "audit_head", sa.column("account_id", sa.Integer()), sa.column("seq", sa.Integer()), sa.column("hash", sa.String())
)


def upgrade() -> None:
    op.create_table(
        "audit_head",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account.id"],
        ),
        sa.PrimaryKeyConstraint("account_id"),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("prev_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("row_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False, server_default="")
        )
    _chain_existing_rows(op.get_bind())
    op.create_index("ux_audit_chain", "audit_log", ["account_id", "seq"], unique=True)
    protect_account_tables(op.get_bind())  # audit_head is account-scoped: its policy and grants


def _chain_existing_rows(conn) -> None:
    accounts = [row[0] for row in conn.execute(sa.text("SELECT id FROM account ORDER BY id"))]
    for account_id in accounts:
        rows = (
            conn.execute(sa.select(audit_log).where(audit_log.c.account_id == account_id).order_by(audit_log.c.id))
            .mappings()
            .all()
        )
        prev, links = GENESIS, []
        for seq, row in enumerate(rows, start=1):
            fields = {name: row[name] for name in CHAINED_FIELDS if name not in ("seq", "prev_hash")}
            link = SimpleNamespace(**fields, seq=seq, prev_hash=prev)
            prev = row_hash(link)
            links.append({"row_id": row["id"], "seq": seq, "prev_hash": link.prev_hash, "row_hash": prev})
        if links:
            conn.execute(
                audit_log.update()
                .where(audit_log.c.id == sa.bindparam("row_id"))
                .values(
                    seq=sa.bindparam("seq"), prev_hash=sa.bindparam("prev_hash"), row_hash=sa.bindparam("row_hash")
                ),
                links,
            )
        conn.execute(audit_head.insert().values(account_id=account_id, seq=len(links), hash=prev))


def downgrade() -> None:
    op.drop_index("ux_audit_chain", table_name="audit_log")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_column("row_hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("seq")
    op.drop_table("audit_head")
