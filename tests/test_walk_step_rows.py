"""A walk's steps are append-only rows (issue 24): recording step N writes what step 1 wrote,
a step back changes one row, an old walk's path becomes rows that replay the same, and a
process killed mid-walk loses no step it committed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import event, text

from rflow_tui.db import HEAD_REVISION, make_engine, open_store, upgrade_schema
from rflow_tui.domain.walk_step import read_path
from rflow_tui.services import audit
from rflow_tui.services.walks import core as walk_core
from rflow_tui.services.walks import flow_steps
from rflow_tui.services.walks import steps as walk_steps
from tests.test_flow_walk import start_walk
from tests.walk_paths import path_of, steps_of

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def statements(db):
    """The SQL the store is sent meanwhile (statement, parameters), in order."""
    seen: list[tuple[str, object]] = []

    def note(conn, cursor, statement, parameters, context, executemany):
        seen.append((" ".join(statement.split()), parameters))

    engine = db.bind.sync_engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def writes(seen) -> list[str]:
    return [s for s, _ in seen if s.split(" ", 1)[0] in ("INSERT", "UPDATE", "DELETE")]


async def record(db, desk, walk_id: int, n: int):
    return await walk_steps.record_step(
        db, actor=desk.tech, session_id=walk_id, node_id=f"n{n}", question=f"Step {n}?", answer="yes"
    )


async def test_step_forty_is_written_exactly_as_step_two_was(db, desk):
    walk = await start_walk(db, desk)
    await record(db, desk, walk.id, 1)
    with statements(db) as second:
        await record(db, desk, walk.id, 2)
    for n in range(3, 40):
        await record(db, desk, walk.id, n)
    with statements(db) as fortieth:
        stored = await record(db, desk, walk.id, 40)

    def shape(seen):  # the writes, and how much each one sends
        return [(s, len(str(p))) for s, p in seen if s in writes(seen)]

    step_writes = writes(fortieth)
    assert sum(s.startswith("INSERT INTO walk_step") for s in step_writes) == 1
    assert not any(s.startswith(("UPDATE walk_step", "DELETE")) for s in step_writes)
    assert [s for s, _ in shape(second)] == [s for s, _ in shape(fortieth)]
    sizes = {s: size for s, size in shape(second)}
    for statement, size in shape(fortieth):  # the walk row and the step carry no copy of the path
        assert abs(size - sizes[statement]) < 40, statement
    assert (stored.step_count, stored.current_node_id) == (40, "n40")
    path = await path_of(db, walk)
    assert [entry["node_id"] for entry in path] == [f"n{n}" for n in range(1, 41)]


async def test_a_step_back_is_one_update_of_one_row_and_keeps_what_it_recorded(db, desk):
    walk = await start_walk(db, desk)
    await flow_steps.answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer="yes", note="ms account")
    await flow_steps.answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer=None)
    before = await path_of(db, walk)
    with statements(db) as seen:
        back = await flow_steps.step_back(db, actor=desk.tech, session_id=walk.id)
    assert back["id"] == before[1]["node_id"]
    step_writes = [s for s in writes(seen) if "walk_step" in s]
    assert len(step_writes) == 1 and step_writes[0].startswith("UPDATE walk_step")
    after = await path_of(db, walk)
    assert after[0] == before[0]
    assert {k: v for k, v in after[1].items() if k not in ("undone", "undone_at")} == before[1]
    assert after[1]["undone"] is True and isinstance(after[1]["undone_at"], str)
    stored = await walk_core.get_session(db, actor=desk.tech, session_id=walk.id)
    assert (stored.step_count, stored.current_node_id) == (2, before[0]["node_id"])
    # The next answer is a new row after the undone one: history is never rewritten.
    await flow_steps.answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer=None)
    assert [(s.node_id, s.undone) for s in await steps_of(db, walk)] == [
        (before[0]["node_id"], False),
        (before[1]["node_id"], True),
        (before[1]["node_id"], False),
    ]


OLD_PATH = [
    # written before node types and labels were stored
    {"node_id": "kind", "question": "Microsoft account or local account?", "answer": "no", "l1_note": "old"},
    {
        "node_id": "local",
        "question": "Reset the password from the sign-in screen.",
        "answer": None,
        "l1_note": None,
        "node_type": "instruction",
        "undone": True,
        "undone_at": "2025-01-02T09:01:00+00:00",
        "at": "2025-01-02T09:00:30+00:00",
    },
    "not a step",  # no reader ever replayed an entry that is not an object
    {
        "node_id": "local",
        "question": "Reset the password from the sign-in screen.",
        "answer": None,
        "l1_note": "done with the user",
        "node_type": "instruction",
        "at": "2025-01-02T09:02:00+00:00",
    },
]


async def _old_desk(url: str, path: list) -> None:
    import json

    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(upgrade_schema, "0006")
        await conn.execute(text("INSERT INTO account (id, name, created_at) VALUES (1, 'Old desk', '2025-01-01')"))
        await conn.execute(
            text(
                'INSERT INTO "user" (id, account_id, email, name, account_role, coverage, is_active, created_at) '
                "VALUES (1, 1, 'tech@old.test', 'Tech', 'l1_tech', false, true, '2025-01-01')"
            )
        )
        for walk_id, walk_path in ((1, path), (2, [])):
            await conn.execute(
                text(
                    "INSERT INTO l1_walk_session (id, account_id, created_by_user_id, ticket_id, ticket_kind, "
                    "session_kind, status, walked_path, walk_notes, created_at, version) "
                    f"VALUES ({walk_id}, 1, 1, 'T-{walk_id}', 'internal', 'flow', 'active', :path, '[]', "
                    "'2025-01-02 09:00:00', 3)"
                ),
                {"path": json.dumps(walk_path)},
            )
    await engine.dispose()


async def test_an_old_walks_path_becomes_rows_that_replay_the_same(empty_db_url):
    await _old_desk(empty_db_url, OLD_PATH)
    engine, open_db = await open_store(empty_db_url)  # the app's start migrates to head
    async with open_db() as db:
        path = await path_of(db, 1)
        assert path == [entry for entry in OLD_PATH if isinstance(entry, dict)]  # each entry as it was stored
        assert await steps_of(db, 1) == read_path(OLD_PATH)  # so the walk replays as before
        rows = (await db.exec(text("SELECT walk_id, seq, undone, account_id FROM walk_step ORDER BY id"))).all()
        assert [tuple(r) for r in rows] == [(1, 1, False, 1), (1, 2, True, 1), (1, 3, False, 1)]
        counts = (await db.exec(text("SELECT id, step_count FROM l1_walk_session ORDER BY id"))).all()
        assert [tuple(r) for r in counts] == [(1, 3), (2, 0)]
        columns = (await db.exec(text("SELECT * FROM l1_walk_session"))).keys()
        assert "walked_path" not in columns  # one place holds the steps
    await engine.dispose()


async def test_going_back_before_0010_puts_the_rows_back_into_the_list(empty_db_url):
    from alembic import command
    from alembic.config import Config

    from rflow_tui.db import MIGRATIONS_DIR

    await _old_desk(empty_db_url, OLD_PATH)
    engine, _ = await open_store(empty_db_url)

    def downgrade(sync_conn) -> None:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.attributes["connection"] = sync_conn
        command.downgrade(cfg, "0009")

    async with engine.begin() as conn:
        await conn.run_sync(downgrade)
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT id, walked_path FROM l1_walk_session ORDER BY id"))).all()
        tables = (await conn.execute(text("SELECT count(*) FROM alembic_version WHERE version_num = '0009'"))).scalar()
    import json

    paths = {walk_id: json.loads(p) if isinstance(p, str) else p for walk_id, p in rows}
    assert paths == {1: [entry for entry in OLD_PATH if isinstance(entry, dict)], 2: []}
    assert tables == 1
    async with engine.begin() as conn:  # and forward again, to head
        await conn.run_sync(upgrade_schema)
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar() == HEAD_REVISION
        assert (await conn.execute(text("SELECT count(*) FROM walk_step"))).scalar() == 3
    await engine.dispose()


CHILD = """
import asyncio, sys
from sqlmodel import select
from rflow_tui.db import open_store
from rflow_tui.models import User
from rflow_tui.services.walks import steps

async def main(url, walk_id):
    engine, open_db = await open_store(url)
    async with open_db() as db:
        tech = (await db.exec(select(User).where(User.email == "tech@contoso.test"))).one()
        db.expunge(tech)
        n = 0
        while True:
            n += 1
            await steps.record_step(db, actor=tech, session_id=walk_id, node_id=f"n{n}", question="Q?", answer="yes")
            print(n, flush=True)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


async def test_a_walk_killed_mid_step_keeps_every_step_it_committed(db_url, db, desk):
    """kill -9 while steps are being written: every step reported committed is there, each
    with its audit entry, the rows are 1..N without a gap, and the walk carries on."""
    walk = await start_walk(db, desk)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, db_url, str(walk.id)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    committed = 0
    try:
        assert child.stdout is not None
        while committed < 25:
            line = await asyncio.to_thread(child.stdout.readline)
            assert line, "the child stopped before it was killed"
            committed = int(line)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    assert child.returncode == -signal.SIGKILL
    stored = await walk_core.get_session(db, actor=desk.tech, session_id=walk.id)
    path = await path_of(db, walk)
    assert len(path) >= committed  # the one being written when it died may have committed too
    assert [entry["node_id"] for entry in path] == [f"n{n}" for n in range(1, len(path) + 1)]
    assert stored.step_count == len(path) and stored.current_node_id == f"n{len(path)}"
    entries = await audit.entries(db, actor=desk.owner, last=1000)
    steps_audited = sorted(e.details["step"] for e in entries if e.action == "l1.session.step")
    assert steps_audited == list(range(1, len(path) + 1))
    assert (await audit.verify(db, actor=desk.owner)).intact
    await record(db, desk, walk.id, len(path) + 1)
    assert len(await path_of(db, walk)) == len(path) + 1


@pytest.mark.postgres_only
async def test_the_guard_refuses_even_the_owner_a_rewrite_or_a_delete(db, desk):
    """The trigger holds for every role, the tables' owner included: a step is marked undone
    once, its recorded fields never change, and no step is deleted."""
    import sqlalchemy.exc

    walk = await start_walk(db, desk)
    await flow_steps.answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer="yes")
    before = await path_of(db, walk)
    attempts = [
        "UPDATE walk_step SET step = json_build_object('node_id', 'forged')",
        "UPDATE walk_step SET seq = seq + 10",
        "UPDATE walk_step SET undone = true",  # undone without saying when
        "DELETE FROM walk_step",
    ]
    for statement in attempts:
        with pytest.raises(sqlalchemy.exc.DBAPIError):
            await db.exec(text(statement))
        await db.rollback()
    assert await path_of(db, walk) == before
