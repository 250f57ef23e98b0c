"""A store that is busy, full or read-only says so, in one line: the CLI exits 2 without a
traceback or SQLAlchemy's "Background on this error" link, and nothing is half-saved."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
import sqlalchemy
from sqlalchemy.ext.asyncio import create_async_engine

from rflow_tui import db as store
from rflow_tui.cli import main
from rflow_tui.domain.errors import StoreFull, StoreReadOnly


@pytest.fixture
def sqlite_desk(tmp_path, monkeypatch):
    path = tmp_path / "desk.sqlite3"
    monkeypatch.setenv("RFLOW_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("RFLOW_DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    monkeypatch.delenv("RFLOW_USER", raising=False)
    assert main(["init", "--account", "Contoso IT", "--email", "owner@contoso.test"]) == 0
    return path


def one_line_refusal(capsys, argv: list[str]) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("rflow: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and "Background on this error" not in err and "sqlalche.me" not in err
    return err


def count_tickets(path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT count(*) FROM ticket").fetchone()[0]


def test_a_desk_held_by_another_writer_says_it_is_busy(sqlite_desk, capsys, monkeypatch):
    monkeypatch.setattr(store, "BUSY_TIMEOUT_MS", 200)  # not the 10 s a tech waits
    holder = sqlite3.connect(sqlite_desk, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        err = one_line_refusal(capsys, ["tickets", "add", "T-1", "--subject", "Printer jam"])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert "the desk is busy: another rflow or tool holds it" in err
    assert count_tickets(sqlite_desk) == 0


def test_a_read_only_desk_says_it_is_read_only(sqlite_desk, capsys, monkeypatch):
    monkeypatch.setenv("RFLOW_DATABASE_URL", f"sqlite+aiosqlite:///file:{sqlite_desk}?mode=ro&uri=true")
    err = one_line_refusal(capsys, ["tickets", "add", "T-2", "--subject", "Mouse"])
    assert "the desk is read-only for you" in err
    assert count_tickets(sqlite_desk) == 0


def test_a_full_disk_is_named_full_not_an_unreachable_database(tmp_path):
    """SQLite's own 'database or disk is full', raised through SQLAlchemy by a desk that may
    not grow (max_page_count), becomes the full-disk error the app and the CLI show."""

    async def fill() -> BaseException:
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'small.sqlite3'}")

        @sqlalchemy.event.listens_for(engine.sync_engine, "connect")
        def tiny(dbapi_connection, _record):
            dbapi_connection.execute("PRAGMA max_page_count = 3")

        try:
            async with engine.begin() as conn:
                await conn.exec_driver_sql("CREATE TABLE t (x TEXT)")
                for _ in range(100):
                    await conn.exec_driver_sql("INSERT INTO t VALUES (?)", ("x" * 4000,))
        except Exception as exc:
            return exc
        finally:
            await engine.dispose()
        raise AssertionError("the small desk never filled")

    error = store.store_error(asyncio.run(fill()))
    assert isinstance(error, StoreFull) and "disk that holds the desk is full" in str(error)
    assert not isinstance(error, StoreReadOnly)


def test_text_that_only_mentions_a_full_disk_is_not_a_store_failure():
    assert store.store_error(ValueError("database or disk is full")) is None


@pytest.mark.sqlite_only
async def test_text_another_tool_stored_as_invalid_utf8_reads_with_replacement_characters(db, desk):
    """A SQLite desk edited by another tool: the row is still listed, its bad bytes shown as
    replacement characters, instead of every query on it failing as "cannot reach the database"."""
    from sqlalchemy import text

    from rflow_tui.services.tickets import list_open_tickets
    from tests.tui_support import seed_tickets

    await seed_tickets(db, desk.tech.account_id, [("T-77", "Printer", "Ann")])
    await db.exec(text("UPDATE ticket SET subject = CAST(X'5072696e74ff6572' AS TEXT) WHERE ticket_id = 'T-77'"))
    await db.commit()
    [ticket] = await list_open_tickets(db, actor=desk.tech, search="T-77")
    assert ticket.subject == "Print\ufffder"
