"""Recording step N of a walk: does a step cost more the longer the walk is?

Run: ``python bench/bench_steps.py [--steps 200 1600] [--backends sqlite postgres]``

For each backend and walk length, a fresh store and one flow walk on a flow with a
loop ("Still broken?" yes -> "Try again" -> back), walked through the services the
walk screen calls:

- answer: ``flow_steps.answer_flow_node`` (reads the walk and its position, records
  the step with its audit entry, one write transaction), the tech's path;
- record: ``steps.record_step`` alone (the write transaction only);
- back:   ``flow_steps.step_back`` at the end of the walk;
- read:   what the walk screen reads to redraw the whole transcript at the end of the walk.

It reports the median ms per step over the first and the last 50 steps, the whole
walk's time, and medians of 10 for the last two. SQLite is a file desk (WAL, as the app opens it); PostgreSQL is a
throwaway cluster started like tests/pg_cluster.py does (fsync off: the figures are
the database's work, not the disk's).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LOOP_FLOW = {
    "format": "rflow.flow/1",
    "title": "Printer keeps jamming",
    "category": "hardware",
    "match_keywords": ["printer"],
    "version": 1,
    "start": "q-broken",
    "nodes": [
        {"id": "q-broken", "type": "question", "text": "Is the printer still jamming?", "yes": "i-retry", "no": "done"},
        {"id": "i-retry", "type": "instruction", "text": "Open tray 2, clear it, close it.", "next": "q-broken"},
        {"id": "done", "type": "resolution", "text": "Print a test page with the user."},
    ],
}
EDGE = 50  # steps measured at the start and at the end


async def _desk(url: str):
    from rflow_tui.db import open_store
    from rflow_tui.models import Ticket
    from rflow_tui.services.library import import_flow_doc
    from rflow_tui.services.users import add_user, create_account

    engine, open_db = await open_store(url)
    async with open_db() as db:
        owner = await create_account(db, name="Bench desk", owner_email="bench.owner@bench.test")
        tech = await add_user(db, actor=owner, email="bench.tech@bench.test", name="Bench Tech", role="l1_tech")
        flow = await import_flow_doc(db, actor=owner, doc=LOOP_FLOW, source="bench")
        flow_id = flow.id
        db.add(
            Ticket(account_id=owner.account_id, ticket_id="T-1", subject="Printer jams", body="", category="hardware")
        )
        await db.commit()
    return engine, open_db, tech, flow_id


async def _walk(url: str, steps: int, how: str) -> dict[str, float]:
    from rflow_tui.services.walks import flow_steps, start
    from rflow_tui.services.walks import steps as walk_steps

    engine, open_db, tech, flow_id = await _desk(url)
    times: list[float] = []
    async with open_db() as db:
        walk = await start.start_flow_session(db, actor=tech, ticket_id="T-1", flow_id=flow_id)
        for n in range(steps):
            question = n % 2 == 0
            began = time.perf_counter()
            if how == "answer":
                await flow_steps.answer_flow_node(
                    db, actor=tech, session_id=walk.id, answer="yes" if question else None
                )
            else:
                await walk_steps.record_step(
                    db,
                    actor=tech,
                    session_id=walk.id,
                    node_id="q-broken" if question else "i-retry",
                    question="Is the printer still jamming?" if question else "Open tray 2, clear it, close it.",
                    answer="yes" if question else None,
                )
            times.append((time.perf_counter() - began) * 1000)
        reads = []
        for _ in range(10):
            began = time.perf_counter()
            await _screen_read(db, tech, walk.id)
            reads.append((time.perf_counter() - began) * 1000)
        backs = []
        for _ in range(10):
            began = time.perf_counter()
            await flow_steps.step_back(db, actor=tech, session_id=walk.id)
            backs.append((time.perf_counter() - began) * 1000)
    await engine.dispose()
    return {
        "first": statistics.median(times[:EDGE]),
        "last": statistics.median(times[-EDGE:]),
        "total_s": sum(times) / 1000,
        "back": statistics.median(backs),
        "read": statistics.median(reads),
    }


async def _screen_read(db, tech, walk_id: int) -> None:
    """What the walk screen reads after a step to redraw its transcript: the walk and all
    its steps (``reads.walk_with_steps``; before it existed, the walk row with its list)."""
    from rflow_tui.services.walks import core, reads

    if hasattr(reads, "walk_with_steps"):
        await reads.walk_with_steps(db, actor=tech, session_id=walk_id)
    else:
        walk = await core.get_session(db, actor=tech, session_id=walk_id)
        assert len(walk.steps) >= 0


def _sqlite_url(folder: str, name: str) -> str:
    return f"sqlite+aiosqlite:///{Path(folder) / name / 'rflow.sqlite3'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[200, 1600])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"], choices=["sqlite", "postgres"])
    args = parser.parse_args()
    server = None
    rows = []
    try:
        for backend in args.backends:
            if backend == "postgres":
                from tests.pg_cluster import start_server

                server = start_server()
            for steps in args.steps:
                for how in ("answer", "record"):
                    with tempfile.TemporaryDirectory() as folder:
                        if server is not None and backend == "postgres":
                            url = server.url(server.empty_database())
                        else:
                            url = _sqlite_url(folder, f"{how}{steps}")
                        result = asyncio.run(_walk(url, steps, how))
                    rows.append((backend, steps, how, result))
                    print(
                        f"{backend:8} {steps:5} steps {how:6}: first {EDGE} {result['first']:6.2f} ms/step, "
                        f"last {EDGE} {result['last']:6.2f} ms/step, whole walk {result['total_s']:6.2f} s, "
                        f"step back {result['back']:6.2f} ms, transcript read {result['read']:6.2f} ms",
                        flush=True,
                    )
    finally:
        if server is not None:
            server.close()
    print()
    print(
        "| backend | steps | service | first 50 (ms/step) | last 50 (ms/step) | whole walk (s) "
        "| step back (ms) | read (ms) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for backend, steps, how, r in rows:
        figures = f"{r['first']:.2f} | {r['last']:.2f} | {r['total_s']:.2f} | {r['back']:.2f} | {r['read']:.2f}"
        print(f"| {backend} | {steps:,} | {how} | {figures} |")


if __name__ == "__main__":
    main()
