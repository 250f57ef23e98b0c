"""The audit log: every change recorded, chained per account, checkable and readable.

Complete: a desk's whole life (people, tickets, flows, proposals, every walk event)
leaves one entry per change. Tamper-evident: an edited, deleted, moved or rewritten
row is named by ``verify``. Readable: ``rflow audit list | tail | verify``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import signal
import subprocess
import sys

import pytest
from sqlalchemy import text
from sqlmodel import select

from rflow_tui.cli import main
from rflow_tui.db import open_store
from rflow_tui.models import AuditHead, AuditLog
from rflow_tui.services import audit, library, proposals, tickets, users
from rflow_tui.services.errors import AccessDenied
from rflow_tui.services.walks import ai_steps
from rflow_tui.services.walks import endings as walk_endings
from rflow_tui.services.walks import flow_steps as flow_steps
from rflow_tui.services.walks import start as walk_start
from rflow_tui.services.walks import steps as walk_steps
from tests.conftest import make_desk
from tests.fakes import ScriptedGenerator
from tests.test_proposals import captured_proposal
from tests.tui_support import SMALL_FLOW


async def chain(db, account_id: int) -> list[AuditLog]:
    await db.rollback()  # a fresh read
    return list(await db.exec(select(AuditLog).where(AuditLog.account_id == account_id).order_by(AuditLog.seq)))


async def actions(db, account_id: int) -> list[str]:
    return [row.action for row in await chain(db, account_id)]


async def one(db, account_id: int, action: str) -> AuditLog:
    [row] = [row for row in await chain(db, account_id) if row.action == action]
    return row


# --- complete ------------------------------------------------------------------------


async def test_people_changes_are_each_recorded(db, desk):
    owner = desk.owner
    await users.update_user(db, actor=owner, email=desk.engineer.email, coverage=True)
    await users.update_user(db, actor=owner, email=desk.engineer.email, coverage=False)
    await users.update_user(db, actor=owner, email=desk.tech.email, active=False)
    await users.update_user(db, actor=owner, email=desk.tech.email, active=False)  # already so: no change, no entry
    await users.update_user(db, actor=desk.admin, email=desk.tech.email, active=True)
    await users.update_user(db, actor=owner, email=desk.coverage.email, role="admin")

    rows = await chain(db, owner.account_id)
    assert [r.action for r in rows] == [
        "account.create",
        "user.add",
        "user.add",
        "user.add",
        "user.add",
        "user.coverage",
        "user.coverage",
        "user.deactivate",
        "user.reactivate",
        "user.role",
        "user.coverage",
    ]
    assert rows[0].details == {"name": "Contoso IT", "owner_email": owner.email}
    assert rows[4].details == {"email": desk.tech.email, "role": "l1_tech", "coverage": False}
    assert (rows[5].details["coverage"], rows[6].details["coverage"]) == (True, False)
    assert rows[8].actor_user_id == desk.admin.id and rows[8].target_id == str(desk.tech.id)
    assert rows[9].details == {"email": desk.coverage.email, "old": "engineer", "new": "admin"}
    assert rows[10].details["coverage"] is False  # an admin carries no coverage flag


async def test_role_changes_guard_the_owners(db, desk):
    with pytest.raises(AccessDenied, match="only owners may make or unmake owners"):
        await users.update_user(db, actor=desk.admin, email=desk.engineer.email, role="owner")
    with pytest.raises(Exception, match="your own role"):
        await users.update_user(db, actor=desk.owner, email=desk.owner.email, role="admin")
    assert "user.role" not in await actions(db, desk.owner.account_id)


async def test_ticket_flow_and_proposal_changes_are_recorded(db, desk):
    await tickets.add_ticket(db, actor=desk.owner, ticket_id="T-50", subject="Mouse dead")
    await tickets.import_tickets(
        db,
        actor=desk.owner,
        rows=[(2, {"ticket_id": "T-51", "subject": "a"}), (3, {"ticket_id": "T-52", "subject": "b"})],
        source="batch.csv",
    )
    flow = await library.import_flow_doc(db, actor=desk.engineer, doc=SMALL_FLOW, source="outlook.json")
    approved = await captured_proposal(db, desk, ticket="T-1")
    await proposals.approve(db, actor=desk.engineer, proposal_id=approved.id, title="Sign-in help")
    rejected = await captured_proposal(db, desk, ticket="T-2")
    await proposals.reject(db, actor=desk.engineer, proposal_id=rejected.id, reason="duplicate")

    account = desk.owner.account_id
    assert (await one(db, account, "ticket.add")).target_id == "T-50"
    assert (await one(db, account, "ticket.import")).details == {"count": 2, "source": "batch.csv"}
    imports = [r for r in await chain(db, account) if r.action == "flow.import"]
    assert imports[0].target_id == str(flow.id) and imports[0].details["source"] == "outlook.json"
    assert (await one(db, account, "proposal.approve")).target_id == str(approved.id)
    assert (await one(db, account, "proposal.reject")).details["reason"] == "duplicate"


async def test_every_walk_event_is_recorded_with_acting_as_on_the_endings(db, desk):
    account = desk.owner.account_id
    flow = await library.import_flow_doc(db, actor=desk.owner, doc=SMALL_FLOW, source="test")
    walk = await walk_start.start_flow_session(db, actor=desk.coverage, ticket_id="T-1", flow_id=flow.id)
    await flow_steps.answer_flow_node(db, actor=desk.coverage, session_id=walk.id, answer="yes", note="work account")
    await flow_steps.step_back(db, actor=desk.coverage, session_id=walk.id)
    await walk_steps.update_notes(db, actor=desk.coverage, session_id=walk.id, notes=["tried safe mode"])
    await walk_steps.update_notes(db, actor=desk.coverage, session_id=walk.id, notes=["tried safe mode"])  # unchanged
    await walk_endings.escalate(
        db, actor=desk.coverage, session_id=walk.id, reason="still broken", reason_category="other"
    )

    gen = ScriptedGenerator({"id": "q1", "type": "question", "text": "Is it plugged in?"})
    ai = await walk_start.start_ai_build_session(
        db, actor=desk.tech, ticket_id="T-2", category="printing", problem_text="Printer offline"
    )
    served = await ai_steps.advance_ai_build(db, actor=desk.tech, session_id=ai.id, generator=gen, judge=None)
    await ai_steps.advance_ai_build(
        db,
        actor=desk.tech,
        session_id=ai.id,
        judge=None,
        generator=ScriptedGenerator({"id": "r1", "type": "resolution", "text": "Plug it in."}),
        token=served["token"],
        answer="no",
    )
    await walk_endings.resolve(db, actor=desk.tech, session_id=ai.id, helpful=True, resolution_notes="plugged in")
    await walk_endings.escalate_without_walk(
        db, actor=desk.coverage, ticket_id="T-3", reason="no idea", reason_category="no_flow"
    )

    walk_rows = [r for r in await chain(db, account) if r.action.startswith("l1.session.")]
    assert [(r.action, r.target_id) for r in walk_rows] == [
        ("l1.session.start", str(walk.id)),
        ("l1.session.step", str(walk.id)),
        ("l1.session.step_back", str(walk.id)),
        ("l1.session.notes", str(walk.id)),
        ("l1.session.escalate", str(walk.id)),
        ("l1.session.start", str(ai.id)),
        ("l1.session.node", str(ai.id)),
        ("l1.session.step", str(ai.id)),
        ("l1.session.node", str(ai.id)),
        ("l1.session.resolve", str(ai.id)),
        ("l1.session.escalate_no_walk", walk_rows[-1].target_id),
    ]
    step, back = walk_rows[1].details, walk_rows[2].details
    assert (step["node_id"], step["answer"], step["step"]) == ("q-account", "yes", 1)
    assert (back["node_id"], back["step"]) == ("q-account", 1)
    assert walk_rows[7].details["answer"] == "no"
    assert walk_rows[4].details["acting_as"] == "l1_coverage"
    assert walk_rows[9].details["acting_as"] is None and walk_rows[9].details["proposal_id"] is not None
    assert walk_rows[10].details["acting_as"] == "l1_coverage"
    assert {r.actor_user_id for r in walk_rows[:5]} == {desk.coverage.id}


# --- tamper-evident --------------------------------------------------------------------


async def test_each_account_has_its_own_unbroken_chain(db, desk):
    other = await make_desk(db, name="Fabrikam", domain="fabrikam.test")
    await tickets.add_ticket(db, actor=desk.owner, ticket_id="T-9", subject="x")
    for account in (desk.owner.account_id, other.owner.account_id):
        rows = await chain(db, account)
        assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
        assert rows[0].prev_hash == "0" * 64
        assert all(later.prev_hash == earlier.row_hash for earlier, later in itertools.pairwise(rows))
        head = await db.get(AuditHead, account)
        assert (head.seq, head.hash) == (rows[-1].seq, rows[-1].row_hash)
    mine = await audit.verify(db, actor=desk.owner)
    assert mine.intact and mine.rows == len(await chain(db, desk.owner.account_id))
    assert (await audit.verify(db, actor=other.owner)).rows == 5  # account.create + 4 users: nothing of Contoso's
    with pytest.raises(AccessDenied):
        await audit.verify(db, actor=desk.engineer)


async def tampered(db, desk, sql: str, **params) -> audit.Verdict:
    await db.exec(text(sql), params=params)
    await db.commit()
    return await audit.verify(db, actor=desk.owner)


async def test_an_edited_row_is_named(db, desk):
    row = (await chain(db, desk.owner.account_id))[2]
    verdict = await tampered(db, desk, "UPDATE audit_log SET actor_user_id = 999 WHERE id = :id", id=row.id)
    assert not verdict.intact and verdict.broken_row_id == row.id
    assert f"row {row.id} (#3) was changed" in verdict.problem


async def test_an_edited_row_with_a_recomputed_hash_breaks_the_next_link(db, desk):
    rows = await chain(db, desk.owner.account_id)
    forged = rows[1]
    forged.details = {**forged.details, "role": "owner"}
    from rflow_tui.domain.audit_chain import row_hash

    verdict = await tampered(
        db,
        desk,
        "UPDATE audit_log SET details = :d, row_hash = :h WHERE id = :id",
        d='{"email": "admin@contoso.test", "role": "owner", "coverage": false}',
        h=row_hash(forged),
        id=forged.id,
    )
    assert verdict.broken_row_id == rows[2].id and "#2 was rewritten" in verdict.problem


async def test_a_deleted_row_is_named_by_the_one_after_it(db, desk):
    rows = await chain(db, desk.owner.account_id)
    verdict = await tampered(db, desk, "DELETE FROM audit_log WHERE id = :id", id=rows[1].id)
    assert verdict.broken_row_id == rows[2].id and "#2 is missing before it (deleted)" in verdict.problem


async def test_deleting_the_newest_rows_shows_against_the_head(db, desk):
    rows = await chain(db, desk.owner.account_id)
    verdict = await tampered(db, desk, "DELETE FROM audit_log WHERE id IN (:a, :b)", a=rows[-1].id, b=rows[-2].id)
    assert not verdict.intact and verdict.broken_row_id is None
    assert "the newest 2 row(s) were deleted" in verdict.problem


async def test_reordered_rows_are_named(db, desk):
    rows = await chain(db, desk.owner.account_id)
    a, b = rows[1], rows[2]
    await db.exec(text("UPDATE audit_log SET seq = -1 WHERE id = :id"), params={"id": a.id})
    await db.exec(text("UPDATE audit_log SET seq = :s WHERE id = :id"), params={"s": a.seq, "id": b.id})
    verdict = await tampered(db, desk, "UPDATE audit_log SET seq = :s WHERE id = :id", s=b.seq, id=a.id)
    assert verdict.broken_row_id == b.id and "was changed" in verdict.problem


async def test_a_recorded_head_exposes_a_log_rewritten_with_fresh_hashes(db, desk):
    head = await audit.verify(db, actor=desk.owner)
    await tickets.add_ticket(db, actor=desk.owner, ticket_id="T-77", subject="later")
    assert (await audit.verify(db, actor=desk.owner, expect=(head.head_seq, head.head_hash))).intact

    # Rewrite row 2 and recompute every hash after it, as someone with the database could.
    from rflow_tui.domain.audit_chain import GENESIS, row_hash

    rows = await chain(db, desk.owner.account_id)
    rows[1].details = {**rows[1].details, "role": "owner"}
    prev = GENESIS
    for row in rows:
        row.prev_hash = prev
        row.row_hash = prev = row_hash(row)
        db.add(row)
    head_row = await db.get(AuditHead, desk.owner.account_id)
    head_row.hash = prev
    db.add(head_row)
    await db.commit()
    assert (await audit.verify(db, actor=desk.owner)).intact  # self-consistent again...
    verdict = await audit.verify(db, actor=desk.owner, expect=(head.head_seq, head.head_hash))
    assert not verdict.intact and "the log was rewritten up to here" in verdict.problem  # ...but not the recorded one


# --- concurrency ----------------------------------------------------------------------------

WORKER = """
import asyncio, sys, time
from pathlib import Path
from rflow_tui.db import open_store
from rflow_tui.services.walks import start as walk_start, steps as walk_steps
from rflow_tui.services.users import find_login

url, email, ticket, go = sys.argv[1:]

async def main():
    engine, open_db = await open_store(url)
    async with open_db() as db:
        actor = await find_login(db, email)
        walk = await walk_start.start_adhoc_session(db, actor=actor, ticket_id=ticket)
    while not Path(go).exists():
        time.sleep(0.005)
    for i in range(25):
        async with open_db() as db:
            await walk_steps.update_notes(db, actor=actor, session_id=walk.id, notes=[f"{ticket} note {i}"])
    await engine.dispose()

asyncio.run(main())
"""


async def test_two_processes_appending_to_one_account_never_fork_the_chain(tmp_path, db, desk, db_url):
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, db_url, email, ticket, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for email, ticket in ((desk.tech.email, "T-1"), (desk.coverage.email, "T-2"))
    ]
    await asyncio.sleep(1.5)  # both are imported, started their walks and wait at the barrier
    go.touch()
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    rows = await chain(db, desk.owner.account_id)
    assert sum(r.action == "l1.session.notes" for r in rows) == 50
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    assert (await audit.verify(db, actor=desk.owner)).intact


# --- readable: the CLI ------------------------------------------------------------------------


@pytest.fixture
def desk_env(tmp_path, monkeypatch, db_url):
    monkeypatch.setenv("RFLOW_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("RFLOW_DATABASE_URL", db_url)
    monkeypatch.delenv("RFLOW_USER", raising=False)
    assert main(["init", "--account", "Contoso IT", "--email", "owner@contoso.test", "--no-starter-flows"]) == 0
    assert main(["users", "add", "tech@contoso.test", "--name", "Tina"]) == 0
    return tmp_path


def in_store(work) -> None:
    """Run ``work(db)`` on the CLI's database, committed."""

    async def go():
        engine, open_db = await open_store(os.environ["RFLOW_DATABASE_URL"])
        async with open_db() as db:
            await work(db)
            await db.commit()
        await engine.dispose()

    asyncio.run(go())


async def record_hostile_entry(db) -> None:
    """An entry holding terminal escapes, as data stored before any sanitiser would hold them."""
    owner = await users.find_login(db, "owner@contoso.test")
    await audit.record(
        db,
        account_id=owner.account_id,
        actor_user_id=owner.id,
        action="ticket.add",
        target_type="ticket",
        target_id="T-1\x1b]52;c;cm0gLXJmIH4v\x07",
        note="\x1b[31mred\x1b[0m\nsecond line\u202e",
    )


def test_audit_list_shows_each_change_as_a_guarded_line(desk_env, capsys):
    assert main(["users", "set-role", "tech@contoso.test", "engineer"]) == 0
    in_store(record_hostile_entry)
    capsys.readouterr()
    assert main(["audit", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [f"#{n}" for n in range(1, len(lines) + 1)]
    assert "owner@contoso.test  account.create  account:" in lines[0]
    lines = [line for line in lines if "user.bind" not in line]  # PostgreSQL: each person's database role
    assert "owner@contoso.test  user.add  user:2  coverage=false email=tech@contoso.test role=l1_tech" in lines[1]
    assert "user.role  user:2  email=tech@contoso.test new=engineer old=l1_tech" in lines[2]
    assert "ticket.add  ticket:T-1" in lines[3] and "red" in lines[3]
    assert not any(ch in line for line in lines for ch in "\x1b\x07\u202e")
    assert main(["audit", "list", "-n", "1"]) == 0
    assert capsys.readouterr().out.splitlines() == lines[-1:]


def test_audit_verify_passes_then_names_the_first_broken_row(desk_env, capsys):
    assert main(["audit", "verify"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"audit log intact: (\d+) row\(s\); head \1:[0-9a-f]{64}\n", out)
    head = out.split("head ", 1)[1].split()[0]
    assert main(["audit", "verify", "--expect", head]) == 0

    in_store(lambda db: db.exec(text("UPDATE audit_log SET details = '{}' WHERE seq = 2")))
    capsys.readouterr()
    assert main(["audit", "verify"]) == 1
    err = capsys.readouterr().err
    assert re.search(r"audit log broken: row \d+ \(#2\) was changed after it was written", err)


def test_audit_commands_are_for_owners_and_admins(desk_env, capsys):
    capsys.readouterr()
    assert main(["--user", "tech@contoso.test", "audit", "list"]) == 2
    assert "only owners and admins may read the audit log" in capsys.readouterr().err


def test_audit_tail_follows_new_rows_until_ctrl_c(desk_env):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    tail = subprocess.Popen(
        [sys.executable, "-m", "rflow_tui", "audit", "tail", "--interval", "0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        first = tail.stdout.readline()
        assert first.startswith("#1 ") and "account.create" in first
        assert main(["tickets", "add", "T-5", "--subject", "Dock flickers"]) == 0
        while "ticket.add" not in (line := tail.stdout.readline()):  # rows shown at start, then the new one
            assert line and "ticket" not in line, tail.stderr.read()
        assert "ticket.add  ticket:T-5" in line
    finally:
        tail.send_signal(signal.SIGINT)
        _, err = tail.communicate(timeout=20)
    assert tail.returncode == 0, err


# --- the migration chains rows written before it ---------------------------------------------


async def test_rows_from_before_the_chain_are_chained_by_the_migration(empty_db_url):
    from rflow_tui.db import make_engine, upgrade_schema

    engine = make_engine(empty_db_url)
    async with engine.begin() as conn:
        await conn.run_sync(upgrade_schema, "0001")
        await conn.execute(text("INSERT INTO account (id, name, created_at) VALUES (1, 'Old', '2025-01-01 00:00:00')"))
        await conn.execute(
            text(
                'INSERT INTO "user" (id, account_id, email, name, account_role, coverage, is_active, created_at) '
                "VALUES (1, 1, 'o@old.test', '', 'owner', false, true, '2025-01-01 00:00:00')"
            )
        )
        for n in range(3):
            await conn.execute(
                text(
                    "INSERT INTO audit_log "
                    "(account_id, actor_user_id, action, target_type, target_id, details, created_at) "
                    f"VALUES (1, 1, 'old.action', 'x', '{n}', '{{\"n\": {n}}}', '2025-01-0{n + 1} 10:00:00.123456')"
                )
            )
    await engine.dispose()

    engine, open_db = await open_store(empty_db_url)
    async with open_db() as db:
        owner = await users.find_login(db, "o@old.test")
        rows = await chain(db, 1)
        assert [(r.seq, r.target_id) for r in rows] == [(1, "0"), (2, "1"), (3, "2")]
        assert (await audit.verify(db, actor=owner)).intact
        await tickets.add_ticket(db, actor=owner, ticket_id="T-1", subject="after")
        verdict = await audit.verify(db, actor=owner)
        assert verdict.intact and verdict.head_seq == 4
    await engine.dispose()
