"""Fifty engineers' feeds on one PostgreSQL under a stream of escalations, with a restart.

Run: ``python bench/bench_feed_load.py [--feeds 50] [--rate 10] [--seconds 60] [--restart-at 30]``

This process holds ``--feeds`` engineers' escalations feeds, each a ``LiveFeed`` with its
own engine (so its own listening connection and its own query connection), as that many
terminals would. A second process is the tech desk: it escalates ``--rate`` walks a second
for ``--seconds`` (each on a fixed schedule; a commit refused while the server is down is
tried again until it lands) and stamps each when its commit returned. Halfway (``--restart-at``)
the PostgreSQL server is stopped and started again. Every feed must deliver every
escalation; the latency is delivery minus commit-returned, over every (feed, escalation).

A throwaway cluster (tests/pg_cluster.py; the server binaries must be installed),
loopback only, bounded in count and time. The engineers connect as their own login role,
so row-level security applies to every feed's queries.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_feed import engineer_connects_as_own_role, percentile, prepare  # noqa: E402


async def write(url: str, rate: float, seconds: float) -> None:
    """Escalate tickets L-1.. on a fixed schedule; print [walk id, due, committed] per walk."""
    from rflow_tui.db import open_store, store_error
    from rflow_tui.domain.errors import DatabaseError
    from rflow_tui.services.users import find_login
    from rflow_tui.services.walks import endings as walk_endings

    engine, open_db = await open_store(url)
    async with open_db() as db:
        tech = await find_login(db, "tech@contoso.test")
    start, stamps, retries = time.time() + 0.5, [], 0
    for n in range(1, int(rate * seconds) + 1):
        due = start + (n - 1) / rate
        await asyncio.sleep(max(0.0, due - time.time()))
        while True:
            try:
                async with open_db() as db:
                    walk = await walk_endings.escalate_without_walk(
                        db, actor=tech, ticket_id=f"L-{n}", reason=f"load {n}", reason_category="hardware"
                    )
                break
            except Exception as exc:  # the server is restarting: the tech tries again
                if store_error(exc) is None and not isinstance(exc, (DatabaseError, OSError)):
                    raise
                retries += 1
                await asyncio.sleep(0.2)
        stamps.append([walk.id, due, time.time()])
    await engine.dispose()
    print(json.dumps({"stamps": stamps, "retries": retries}))


async def measure(server, engineer_url: str, writer_url: str, args) -> dict[str, object]:
    from rflow_tui.config import Settings
    from rflow_tui.db import open_store
    from rflow_tui.services.app_context import AppContext
    from rflow_tui.services.live_feed import FeedStatus, LiveFeed
    from rflow_tui.services.users import find_login

    delivered: list[dict[int, float]] = [{} for _ in range(args.feeds)]
    statuses: list[list[str]] = [[] for _ in range(args.feeds)]
    engines, tasks = [], []
    for i in range(args.feeds):
        engine, open_db = await open_store(engineer_url)
        async with open_db() as db:
            engineer = await find_login(db, "eng@contoso.test")
        engines.append(engine)

        def deliver(batch, seen=delivered[i]) -> None:
            now = time.time()
            for walk in batch.walks:
                seen.setdefault(walk.id, now)

        ctx = AppContext(settings=Settings(), engine=engine, open_db=open_db, user=engineer)
        feed = LiveFeed(ctx, deliver=deliver, on_status=statuses[i].append)
        tasks.append(asyncio.ensure_future(feed.run()))
    try:
        while not all(FeedStatus.LIVE in s for s in statuses):
            await asyncio.sleep(0.1)
        tech = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--write",
            writer_url,
            "--rate",
            str(args.rate),
            "--seconds",
            str(args.seconds),
            stdout=asyncio.subprocess.PIPE,
        )
        began = time.time()
        restart = None
        if args.restart_at:
            await asyncio.sleep(args.restart_at)
            stopped = time.time()
            await asyncio.to_thread(server.stop)
            await asyncio.sleep(1.0)
            await asyncio.to_thread(server.start)
            restart = (stopped - began, time.time() - began)
        out, _ = await tech.communicate()
        if tech.returncode:
            raise SystemExit(f"the writer process failed ({tech.returncode})")
        written = json.loads(out)
        stamps = written["stamps"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(w not in seen for seen in delivered for w, _, _ in stamps):
            await asyncio.sleep(0.1)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for engine in engines:
            await engine.dispose()
    missed = sum(w not in seen for seen in delivered for w, _, _ in stamps)
    latency = sorted((seen[w] - done) * 1000 for seen in delivered for w, _, done in stamps if w in seen)
    calm = sorted(
        (seen[w] - done) * 1000
        for seen in delivered
        for w, _, done in stamps
        if w in seen and not (restart and restart[0] - 1 <= done - began <= restart[1] + 15)
    )
    return {
        "feeds": args.feeds,
        "escalations": len(stamps),
        "deliveries expected": len(stamps) * args.feeds,
        "missed": missed,
        "p50 ms": percentile(latency, 50),
        "p95 ms": percentile(latency, 95),
        "max ms": latency[-1],
        "p95 ms outside the restart window": percentile(calm, 95) if len(calm) > 1 else float("nan"),
        "writer retries during the restart": written["retries"],
        "restart (s into the run: stopped, started)": restart,
        "feeds that said reconnecting": sum("reconnecting" in s for s in statuses),
        "feeds live at the end": sum(s[-1] == "live" for s in statuses if s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=50)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--restart-at", type=float, default=30.0, help="0 for no restart")
    parser.add_argument("--write", metavar="URL", help=argparse.SUPPRESS)  # the tech desk's process
    args = parser.parse_args()
    if args.write:
        asyncio.run(write(args.write, args.rate, args.seconds))
        return

    from tests.pg_cluster import Cluster

    count = int(args.rate * args.seconds)
    server = Cluster()
    try:
        name = server.fresh_database()
        owner_url = server.url(name)
        asyncio.run(prepare(owner_url, 0))
        asyncio.run(_seed(owner_url, count))
        engineer_url = engineer_connects_as_own_role(server, name, owner_url)
        result = asyncio.run(measure(server, engineer_url, owner_url, args))
    finally:
        server.close()
    for key, value in result.items():
        print(f"{key}: {value:.1f}" if isinstance(value, float) else f"{key}: {value}")


async def _seed(url: str, count: int) -> None:
    from rflow_tui.db import open_store
    from rflow_tui.services.users import find_login
    from tests.tui_support import seed_tickets

    engine, open_db = await open_store(url)
    async with open_db() as db:
        owner = await find_login(db, "owner@contoso.test")
        await seed_tickets(db, owner.account_id, [(f"L-{n}", f"load {n}", "Lee") for n in range(1, count + 1)])
    await engine.dispose()


if __name__ == "__main__":
    main()
