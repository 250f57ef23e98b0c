"""Two real processes working one session on one SQLite file never lose an update."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

from sqlmodel import select

from rflow_tui.models import Flow, L1WalkSession
from rflow_tui.services.walks import start as walk_start
from tests.walk_paths import path_of

WORKER = textwrap.dedent(
    """
    import asyncio, sys, time
    from pathlib import Path
    from rflow_tui.db import open_store
    from rflow_tui.services.walks import endings, steps
    from rflow_tui.services.errors import InvalidState
    from rflow_tui.services.users import find_login

    url, email, session_id, op, tag, count, go = sys.argv[1:]
    session_id, count = int(session_id), int(count)

    async def main():
        engine, open_db = await open_store(url)
        async with open_db() as db:
            actor = await find_login(db, email)
        while not Path(go).exists():
            time.sleep(0.005)
        outcome = "ok"
        for i in range(count):
            async with open_db() as db:
                try:
                    if op == "step":
                        await steps.record_step(db, actor=actor, session_id=session_id,
                                                node_id=f"{tag}-{i}", question="q", answer="yes")
                    elif op == "resolve":
                        await endings.resolve(db, actor=actor, session_id=session_id,
                                              helpful=True, resolution_notes=tag)
                except InvalidState:
                    outcome = "refused"
        await engine.dispose()
        print(outcome)

    asyncio.run(main())
    """
)


def run_pair(tmp_path: Path, url: str, email: str, session_id: int, op: str, count: int) -> list[str]:
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, email, str(session_id), op, tag, str(count), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("A", "B")
    ]
    time.sleep(1.0)  # both processes are imported and waiting at the barrier
    go.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(out.strip())
    return results


async def test_concurrent_steps_from_two_processes_are_all_kept(tmp_path, db, desk, db_url):
    flow = Flow(account_id=desk.tech.account_id, slug="f", title="f", flow_data={"nodes": []})
    db.add(flow)
    await db.commit()
    walk = await walk_start.start_flow_session(db, actor=desk.tech, ticket_id="T-1", flow_id=flow.id)

    run_pair(tmp_path, db_url, desk.tech.email, walk.id, "step", count=30)

    db.expire_all()
    stored = (await db.exec(select(L1WalkSession).where(L1WalkSession.id == walk.id))).one()
    ids = [entry["node_id"] for entry in (await path_of(db, stored))]
    assert len(ids) == 60
    assert sorted(ids) == sorted([f"A-{i}" for i in range(30)] + [f"B-{i}" for i in range(30)])
    # each process's own steps stay in the order it made them
    assert [i for i in ids if i.startswith("A")] == [f"A-{i}" for i in range(30)]


async def test_two_processes_resolving_at_once_resolve_exactly_once(tmp_path, db, desk, db_url):
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")
    outcomes = run_pair(tmp_path, db_url, desk.tech.email, walk.id, "resolve", count=1)
    assert sorted(outcomes) == ["ok", "refused"]
    db.expire_all()
    stored = (await db.exec(select(L1WalkSession).where(L1WalkSession.id == walk.id))).one()
    assert stored.status == "resolved" and stored.resolution_notes in ("A", "B")
