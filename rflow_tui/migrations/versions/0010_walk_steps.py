"""a walk's steps as append-only rows: recording step N costs what step 1 did

Revision ID: 0010
Revises: 0009

Until now every step copied the walk's whole ``walked_path`` JSON list and wrote it back
(6.4 ms a step at 200 steps, 18.7 ms at 1,600: issue 24). Each step is now one
``walk_step`` row (``seq`` from 1, unique per walk) holding exactly the JSON object the
list held; a step back marks its row ``undone`` (one UPDATE). ``l1_walk_session`` keeps
``step_count`` (rows written, stepped-back ones included) instead of the list.

Existing walks' lists are copied into rows entry by entry, unchanged, so a walk replays
as before (``WalkStep.from_json`` reads the same objects); entries that were not objects
(which no reader ever replayed) are left out. On PostgreSQL the table is under the
account policy like every account-scoped table, a person inserts steps only into their
own active walk and updates one only to mark it undone (rls.py ``ROLE_RULES``), and a
trigger refuses any other change and every delete, for every role (walk_step_sql.py).

(Numbered 0009 after 0006 while 0007 and 0008 are written elsewhere: the chain is
renumbered when they meet.)
"""

import json

import sqlalchemy as sa
from alembic import op

from rflow_tui.migrations.rls import ROLE_RULES, protect_account_tables
from rflow_tui.migrations.walk_step_sql import protect_walk_steps, unprotect_walk_steps

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BATCH = 1000

walks = sa.table(
    "l1_walk_session",
    sa.column("id", sa.Integer()),
    sa.column("account_id", sa.Integer()),
    sa.column("walked_path", sa.JSON()),
    sa.column("step_count", sa.Integer()),
)
steps = sa.table(
    "walk_step",
    sa.column("account_id", sa.Integer()),
    sa.column("walk_id", sa.Integer()),
    sa.column("seq", sa.Integer()),
    sa.column("step", sa.JSON()),
    sa.column("undone", sa.Boolean()),
)


def upgrade() -> None:
    op.create_table(
        "walk_step",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("walk_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("step", sa.JSON(), nullable=False),
        sa.Column("undone", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"]),
        sa.ForeignKeyConstraint(["walk_id"], ["l1_walk_session.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("walk_id", "seq", name="uq_walk_step_seq"),
    )
    op.create_index("ix_walk_step_live", "walk_step", ["walk_id", "undone", "seq"])
    op.add_column("l1_walk_session", sa.Column("step_count", sa.Integer(), nullable=False, server_default="0"))
    conn = op.get_bind()
    _copy_paths_into_rows(conn)
    op.drop_column("l1_walk_session", "walked_path")  # SQLite >= 3.35 drops it in place
    protect_account_tables(conn)  # walk_step is account-scoped: its policy, role rules and grants
    protect_walk_steps(conn)


def _copy_paths_into_rows(conn) -> None:
    rows = conn.execute(sa.select(walks.c.id, walks.c.account_id, walks.c.walked_path).order_by(walks.c.id))
    batch: list[dict] = []
    counts: list[dict] = []
    for walk_id, account_id, path in rows.all():
        entries = [entry for entry in (_as_list(path)) if isinstance(entry, dict)]
        for seq, entry in enumerate(entries, start=1):
            batch.append(
                {
                    "account_id": account_id,
                    "walk_id": walk_id,
                    "seq": seq,
                    "step": entry,
                    "undone": bool(entry.get("undone")),
                }
            )
        if entries:
            counts.append({"walk": walk_id, "n": len(entries)})
        if len(batch) >= BATCH:
            conn.execute(steps.insert(), batch)
            batch = []
    if batch:
        conn.execute(steps.insert(), batch)
    if counts:
        conn.execute(
            walks.update().where(walks.c.id == sa.bindparam("walk")).values(step_count=sa.bindparam("n")), counts
        )


def _as_list(path) -> list:
    if isinstance(path, str):  # a driver that hands JSON back as text
        path = json.loads(path)
    return path if isinstance(path, list) else []


def downgrade() -> None:
    conn = op.get_bind()
    unprotect_walk_steps(conn)
    op.add_column("l1_walk_session", sa.Column("walked_path", sa.JSON(), nullable=False, server_default="[]"))
    paths: dict[int, list] = {}
    for walk_id, step in conn.execute(sa.select(steps.c.walk_id, steps.c.step).order_by(steps.c.walk_id, steps.c.seq)):
        paths.setdefault(walk_id, []).append(step)
    if paths:
        conn.execute(
            walks.update().where(walks.c.id == sa.bindparam("walk")).values(walked_path=sa.bindparam("path")),
            [{"walk": walk_id, "path": path} for walk_id, path in paths.items()],
        )
    if conn.dialect.name == "postgresql":
        for table, command, *_ in ROLE_RULES:
            if table == "walk_step":
                conn.exec_driver_sql(f'DROP POLICY IF EXISTS rflow_role_{command.lower()} ON "{table}"')
    op.drop_index("ix_walk_step_live", table_name="walk_step")
    op.drop_table("walk_step")
    op.drop_column("l1_walk_session", "step_count")
