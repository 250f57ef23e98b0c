"""The schema is versioned and migrated at start; older databases open in newer rflow."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text

from rflow_tui.db import HEAD_REVISION, current_revision, make_engine, migrate, open_store


def script_head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from rflow_tui.db import MIGRATIONS_DIR

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(cfg).get_current_head()


def test_head_revision_constant_matches_the_shipped_scripts():
    assert script_head() == HEAD_REVISION


async def test_a_new_database_is_created_at_head_with_every_table(empty_db_url):
    engine, _ = await open_store(empty_db_url)
    assert await current_revision(engine) == HEAD_REVISION
    async with engine.connect() as conn:
        tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    assert {
        "account",
        "user",
        "ticket",
        "flow",
        "flowproposal",
        "l1_walk_session",
        "notification",
        "audit_log",
    } <= tables
    await engine.dispose()


@pytest.mark.sqlite_only
async def test_sqlite_runs_in_wal_with_busy_timeout_and_foreign_keys(db_url):
    engine, _ = await open_store(db_url)
    async with engine.connect() as conn:
        assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
        assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar() >= 5000
        assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
    await engine.dispose()


async def test_database_from_an_older_revision_is_upgraded_with_its_data(empty_db_url):
    """Build the oldest schema, store a row, then open it the way the app does."""
    from rflow_tui.db import upgrade_schema

    engine = make_engine(empty_db_url)
    async with engine.begin() as conn:
        await conn.run_sync(upgrade_schema, "0001")
        await conn.execute(text("INSERT INTO account (name, created_at) VALUES ('Old desk', '2025-01-01 00:00:00')"))
    await engine.dispose()

    engine, _ = await open_store(empty_db_url)
    assert await current_revision(engine) == HEAD_REVISION
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT name FROM account"))).scalar() == "Old desk"
    await migrate(engine)  # a second start is a no-op
    await engine.dispose()


@pytest.mark.sqlite_only
async def test_a_locked_database_gets_a_clear_error_and_loses_nothing(db_url, tmp_path):
    import sqlite3

    from sqlmodel import select

    from rflow_tui.db import DatabaseError, db_session_factory, write_transaction
    from rflow_tui.models import Account
    from rflow_tui.services.users import create_account

    engine, open_db = await open_store(db_url)
    async with open_db() as db:
        await create_account(db, name="Desk", owner_email="o@x.test")
    await engine.dispose()

    holder = sqlite3.connect(db_url.split(":///", 1)[1], isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    engine = make_engine(db_url, busy_timeout_ms=200)
    async with db_session_factory(engine)() as db:
        with pytest.raises(DatabaseError, match=r"desk is busy.*Nothing was saved"):
            async with write_transaction(db):
                db.add(Account(name="lost?"))
    holder.rollback()
    holder.close()
    async with db_session_factory(engine)() as db:
        async with write_transaction(db):
            db.add(Account(name="after"))
        names = [a.name for a in await db.exec(select(Account))]
    assert names == ["Desk", "after"]
    await engine.dispose()
