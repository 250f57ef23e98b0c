"""Commit to the engineer's screen: latency of the live escalations feed, across two processes.

Run: ``python bench/bench_feed.py [--backend both|postgres|sqlite] [--count 200]``

This process is the engineer: it runs ``LiveFeed`` exactly as the escalations screen
does and stamps each walk when the feed's delivery callback (the screen's
``show_batch``) receives it. A second process is the tech: it escalates one walk at a
time, a random 50 to 250 ms apart, and stamps each when its commit has returned.
Latency is delivery minus commit-returned (one machine, one wall clock); the time the
escalate transaction itself took is printed beside it.

PostgreSQL: a throwaway cluster (tests/pg_cluster.py, the server binaries must be
installed); the engineer connects as their own login role, so row-level security
applies to the catch-up query. SQLite: a file in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ENGINEER_ROLE = "bench_engineer"


# --- the tech: a process of its own --------------------------------------------------------


async def write(url: str, count: int, seed: int) -> None:
    """Escalate ``count`` walks (tickets B-1..B-n); print [walk id, call, committed] per walk."""
    from rflow_tui.db import open_store
    from rflow_tui.services.users import find_login
    from rflow_tui.services.walks import endings as walk_endings

    pace = random.Random(seed)
    engine, open_db = await open_store(url)
    stamps = []
    async with open_db() as db:
        tech = await find_login(db, "tech@contoso.test")
        for n in range(1, count + 1):
            await asyncio.sleep(pace.uniform(0.05, 0.25))
            called = time.time()
            walk = await walk_endings.escalate_without_walk(
                db, actor=tech, ticket_id=f"B-{n}", reason=f"bench {n}", reason_category="hardware"
            )
            stamps.append([walk.id, called, time.time()])
    await engine.dispose()
    print(json.dumps(stamps))


# --- the engineer: this process --------------------------------------------------------------


async def prepare(url: str, count: int) -> None:
    """A desk with ``count`` open tickets for the tech to escalate."""
    from rflow_tui.db import open_store
    from tests.conftest import make_desk
    from tests.tui_support import seed_tickets

    engine, open_db = await open_store(url)
    async with open_db() as db:
        desk = await make_desk(db)
        await seed_tickets(db, desk.tech.account_id, [(f"B-{n}", f"bench {n}", "Ben") for n in range(1, count + 1)])
    await engine.dispose()


async def measure(engineer_url: str, writer_url: str, count: int) -> dict[str, float]:
    from rflow_tui.config import Settings
    from rflow_tui.db import open_store
    from rflow_tui.services.app_context import AppContext
    from rflow_tui.services.live_feed import FeedStatus, LiveFeed
    from rflow_tui.services.users import find_login

    engine, open_db = await open_store(engineer_url)
    async with open_db() as db:
        engineer = await find_login(db, "eng@contoso.test")
    delivered: dict[int, float] = {}
    statuses: list[FeedStatus] = []
    first = asyncio.Event()

    def deliver(batch) -> None:
        now = time.time()
        for walk in batch.walks:
            delivered.setdefault(walk.id, now)
        first.set()

    ctx = AppContext(settings=Settings(), engine=engine, open_db=open_db, user=engineer)
    feed = LiveFeed(ctx, deliver=deliver, on_status=statuses.append)
    task = asyncio.ensure_future(feed.run())
    try:
        await asyncio.wait_for(first.wait(), 30)
        while FeedStatus.LIVE not in statuses:
            await asyncio.sleep(0.05)
        tech = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--write", writer_url, "--count", str(count), stdout=asyncio.subprocess.PIPE
        )
        out, _ = await tech.communicate()
        if tech.returncode:
            raise SystemExit(f"the writer process failed ({tech.returncode})")
        stamps = json.loads(out)
        deadline = time.monotonic() + 30
        while any(walk_id not in delivered for walk_id, _, _ in stamps) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await engine.dispose()
    missed = [walk_id for walk_id, _, _ in stamps if walk_id not in delivered]
    latency = sorted((delivered[w] - done) * 1000 for w, _, done in stamps if w in delivered)
    commit = sorted((done - called) * 1000 for _, called, done in stamps)
    return {
        "escalations": len(stamps),
        "missed": len(missed),
        "p50 ms": percentile(latency, 50),
        "p95 ms": percentile(latency, 95),
        "max ms": latency[-1],
        "escalate tx p50 ms": percentile(commit, 50),
        "statuses": " -> ".join(statuses),  # type: ignore[dict-item]
    }


def percentile(sorted_values: list[float], pct: float) -> float:
    return statistics.quantiles(sorted_values, n=100, method="inclusive")[int(pct) - 1]


def engineer_connects_as_own_role(server, name: str, owner_url: str) -> str:
    """The desk's engineer gets a login role of their own (row-level security applies to
    them, as on a real team's server); returns the URL they connect with."""
    from sqlalchemy.engine import make_url

    from rflow_tui.migrations.rls import PEOPLE_ROLE

    server.admin(f"CREATE ROLE {ENGINEER_ROLE} LOGIN PASSWORD 'bench' IN ROLE {PEOPLE_ROLE}")
    server.admin(f'GRANT CONNECT ON DATABASE "{name}" TO {ENGINEER_ROLE}')
    bind = f"UPDATE \"user\" SET db_role = '{ENGINEER_ROLE}' WHERE email = 'eng@contoso.test'"
    asyncio.run(_execute(owner_url, bind))
    return make_url(owner_url).set(username=ENGINEER_ROLE, password="bench").render_as_string(hide_password=False)


def on_postgres(count: int) -> dict[str, float]:
    from tests.pg_cluster import Cluster

    server = Cluster()
    try:
        name = server.fresh_database()
        owner_url = server.url(name)
        asyncio.run(prepare(owner_url, count))
        engineer_url = engineer_connects_as_own_role(server, name, owner_url)
        return asyncio.run(measure(engineer_url, owner_url, count))
    finally:
        server.close()


async def _execute(url: str, sql: str) -> None:
    from sqlalchemy import text

    from rflow_tui.db import make_engine

    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text(sql))
    await engine.dispose()


def on_sqlite(count: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{folder}/bench.sqlite3"
        asyncio.run(prepare(url, count))
        return asyncio.run(measure(url, url, count))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("both", "postgres", "sqlite"), default="both")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--write", metavar="URL", help=argparse.SUPPRESS)  # the tech's process
    args = parser.parse_args()
    if args.write:
        asyncio.run(write(args.write, args.count, seed=7))
        return
    for backend, run in (("postgres", on_postgres), ("sqlite", on_sqlite)):
        if args.backend in (backend, "both"):
            result = run(args.count)
            print(
                backend, " · ".join(f"{k}: {v:.1f}" if isinstance(v, float) else f"{k}: {v}" for k, v in result.items())
            )


if __name__ == "__main__":
    main()
