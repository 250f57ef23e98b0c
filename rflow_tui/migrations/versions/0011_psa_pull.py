"""PSA tickets pulled into the desk; the outbox's rows written only as the services write them

Revision ID: 0011
Revises: 0010

``rflow psa pull`` keeps what a PSA says of a ticket that the desk did not hold before:
its priority, a link back to it (``psa_url``) and when the PSA last changed it
(``psa_updated_at``: an unchanged ticket is skipped, and ``--watch`` asks only for what
changed after the newest one). On PostgreSQL the outbox gets its role rules (rls.py
``ROLE_RULES``): a row only for a walk its writer ended, one per walk, queued as new; only
its delivery columns change afterwards (a column grant), a failed one only by a reviewer,
a delivered one never.
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

from rflow_tui.migrations.rls import PEOPLE_ROLE, protect_account_tables

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    op.add_column("ticket", sa.Column("priority", text(length=80), nullable=False, server_default=""))
    op.add_column("ticket", sa.Column("psa_url", text(length=1000), nullable=True))
    op.add_column("ticket", sa.Column("psa_updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    protect_account_tables(op.get_bind())


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        for command in ("insert", "update"):
            conn.exec_driver_sql(f'DROP POLICY IF EXISTS rflow_role_{command} ON "psa_outbox"')
        if conn.exec_driver_sql(f"SELECT 1 FROM pg_roles WHERE rolname = '{PEOPLE_ROLE}'").first():
            conn.exec_driver_sql(f'GRANT UPDATE ON "psa_outbox" TO {PEOPLE_ROLE}')
    op.drop_column("ticket", "psa_updated_at")
    op.drop_column("ticket", "psa_url")
    op.drop_column("ticket", "priority")
