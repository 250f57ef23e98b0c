"""Set-up commands run while techs work: they wait for the write lock as the app does, and an
import is all or nothing however large, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import sqlite3
import threading
import time

import pytest

from rflow_tui.cli import main
from rflow_tui.models import Ticket, User
from rflow_tui.services.tickets import IMPORT_CHUNK, import_tickets
from tests.test_cli_setup import env, rows  # noqa: F401  (the fixture)


@pytest.fixture
def desk(env):  # noqa: F811
    assert main(["init", "--account", "Contoso IT", "--email", "owner@contoso.test", "--no-starter-flows"]) == 0
    return env


class TechSavingNotes(threading.Thread):
    """Another process's writer: takes the write lock, changes a row, holds it a moment, commits."""

    def __init__(self, hold_seconds: float = 1.5) -> None:
        super().__init__(daemon=True)
        self.hold = hold_seconds
        self.locked = threading.Event()

    def run(self) -> None:
        path = os.environ["RFLOW_DATABASE_URL"].split(":///", 1)[1]
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE account SET name = name || ''")
        self.locked.set()
        time.sleep(self.hold)
        conn.execute("COMMIT")
        conn.close()


def while_locked(argv: list[str]) -> int:
    """Run ``rflow ARGV`` while another writer holds the lock and then commits."""
    writer = TechSavingNotes()
    writer.start()
    assert writer.locked.wait(10)
    try:
        return main(argv)
    finally:
        writer.join()


@pytest.mark.sqlite_only
def test_users_add_waits_for_the_lock_instead_of_failing(desk, capsys):
    assert while_locked(["users", "add", "tina@contoso.test", "--role", "l1_tech"]) == 0, capsys.readouterr().err
    assert "tina@contoso.test" in {u.email for u in rows(desk, User)}


@pytest.mark.sqlite_only
def test_tickets_import_waits_for_the_lock_instead_of_failing(desk, capsys):
    lines = "".join(f"T-{n},Printer {n}\n" for n in range(3 * IMPORT_CHUNK))
    (desk / "t.csv").write_text("ticket_id,subject\n" + lines, encoding="utf-8")
    assert while_locked(["tickets", "import", str(desk / "t.csv")]) == 0, capsys.readouterr().err
    assert len(rows(desk, Ticket)) == 3 * IMPORT_CHUNK


@pytest.mark.sqlite_only
def test_tickets_add_waits_for_the_lock_instead_of_failing(desk, capsys):
    assert while_locked(["tickets", "add", "T-1", "--subject", "Printer"]) == 0, capsys.readouterr().err
    assert [t.ticket_id for t in rows(desk, Ticket)] == ["T-1"]


def test_a_problem_after_the_first_chunks_imports_nothing(desk, capsys):
    main(["tickets", "add", "T-2500", "--subject", "stored already"])
    capsys.readouterr()
    lines = "".join(f"T-{n},Printer {n}\n" for n in range(3 * IMPORT_CHUNK))
    (desk / "t.csv").write_text("ticket_id,subject\n" + lines, encoding="utf-8")
    assert main(["tickets", "import", str(desk / "t.csv")]) == 2
    assert "ticket T-2500 already exists" in capsys.readouterr().err
    assert [t.ticket_id for t in rows(desk, Ticket)] == ["T-2500"]


def test_a_broken_line_after_the_first_chunks_imports_nothing(desk, capsys):
    lines = "".join(f"T-{n},Printer {n}\n" for n in range(3 * IMPORT_CHUNK))
    (desk / "t.csv").write_text("ticket_id,subject\n" + lines + "T-x,one,too many\n", encoding="utf-8")
    assert main(["tickets", "import", str(desk / "t.csv")]) == 2
    assert f"line {3 * IMPORT_CHUNK + 2}: 3 field(s)" in capsys.readouterr().err
    assert rows(desk, Ticket) == []


MORE_THAN_ONE_QUERY_CAN_NAME = 32_767 + 233  # asyncpg's limit on bind parameters in one statement


@pytest.mark.postgres_only
async def test_an_import_larger_than_the_parameter_limit_works_on_postgres(db, desk_in_db):
    owner = desk_in_db
    report = await import_tickets(
        db,
        actor=owner,
        source="big.csv",
        rows=((n + 2, {"ticket_id": f"T-{n}", "subject": f"Printer {n}"}) for n in range(MORE_THAN_ONE_QUERY_CAN_NAME)),
    )
    assert report.errors == [] and report.imported == MORE_THAN_ONE_QUERY_CAN_NAME
    again = await import_tickets(
        db,
        actor=owner,
        source="again.csv",
        rows=(
            (n, {"ticket_id": f"T-{n}", "subject": "x"})
            for n in range(MORE_THAN_ONE_QUERY_CAN_NAME - 2, MORE_THAN_ONE_QUERY_CAN_NAME + 5)
        ),
    )
    assert again.imported == 0 and again.errors == [
        f"again.csv: ticket T-{n} already exists (--skip-existing imports the rest)"
        for n in (MORE_THAN_ONE_QUERY_CAN_NAME - 2, MORE_THAN_ONE_QUERY_CAN_NAME - 1)
    ]


@pytest.fixture
async def desk_in_db(db):
    from rflow_tui.services.users import create_account

    owner = await create_account(db, name="Big desk", owner_email="owner@big.test")
    db.expunge(owner)
    return owner
