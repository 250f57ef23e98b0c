"""Alembic environment: runs on the connection rflow hands it (see db.migrate)."""

from alembic import context
from sqlmodel import SQLModel

from rflow_tui import models  # noqa: F401  (registers the tables)

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only for `alembic` run by hand
    raise SystemExit("run migrations through rflow (they need rflow's connection)")

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
