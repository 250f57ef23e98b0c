"""a walk keeps the step note being typed, so a quit, a crash or kill -9 loses none of it

Revision ID: 0007
Revises: 0006

``l1_walk_session.step_note_draft`` holds the note a tech has typed for the step on
screen and not yet sent with an answer; it is cleared when the answer stores it. A
plain column of the walk: row-level security and the walk's role rules cover it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("l1_walk_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("step_note_draft", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("l1_walk_session", schema=None) as batch_op:
        batch_op.drop_column("step_note_draft")
