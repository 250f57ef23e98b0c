"""What row-level security costs the picker on PostgreSQL: the same queries as the schema
owner (not subject to the policies) and as a person's own role (subject to them).

Run: ``python bench/bench_rls.py [--tickets 100000] [--rounds 15]``

Starts a throwaway cluster (tests/pg_cluster.py: the server binaries must be installed),
seeds two accounts with half the tickets each, binds the first account's tech to a
login role, then times, per round and per connection: the picker's first page
(``list_open_tickets``), its count, and a search for "printer". Both connections
run the same service calls with the same account id; medians are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


async def seed(server, name: str, tickets: int) -> str:
    """Two accounts, ``tickets`` open tickets between them, and a login role for account 1's tech."""
    import asyncpg
    from sqlalchemy.engine import make_url

    from rflow_tui.migrations.rls import PEOPLE_ROLE

    url = make_url(server.url(name)).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(url)
    await conn.execute("INSERT INTO account (name, created_at) VALUES ('A', now()), ('B', now())")
    await conn.execute(
        'INSERT INTO "user" (account_id, email, name, account_role, coverage, is_active, created_at, db_role) '
        "VALUES (1, 'tech@a.test', 'Tech', 'l1_tech', false, true, now(), 'bench_tech')"
    )
    server.admin("DROP ROLE IF EXISTS bench_tech")
    server.admin(f"CREATE ROLE bench_tech LOGIN PASSWORD 'bench' IN ROLE {PEOPLE_ROLE}")
    await conn.execute(
        "INSERT INTO ticket (account_id, ticket_id, ticket_kind, subject, body, requester, category, status, "
        "created_at, updated_at) SELECT 1 + (g % 2), 'T-' || g, 'internal', "
        "CASE WHEN g % 10 = 0 THEN 'printer offline ' ELSE 'outlook slow ' END || g, '', 'Requester ' || g, "
        "'', 'open', now() - g * interval '1 minute', now() FROM generate_series(1, $1) g",
        tickets,
    )
    await conn.execute("ANALYZE")
    await conn.close()
    return make_url(server.url(name)).set(username="bench_tech", password="bench").render_as_string(hide_password=False)


async def time_queries(url: str, rounds: int) -> dict[str, float]:
    from rflow_tui.db import open_store
    from rflow_tui.services import tickets

    engine, open_db = await open_store(url)
    samples: dict[str, list[float]] = {"first page": [], "count": [], "search 'printer'": []}
    calls = {
        "first page": lambda db: tickets.list_open_tickets(db, 1, limit=100),
        "count": lambda db: tickets.count_open_tickets(db, 1),
        "search 'printer'": lambda db: tickets.list_open_tickets(db, 1, search="printer", limit=100),
    }
    async with open_db() as db:
        for _ in range(rounds + 1):  # the first round warms the pool and the plan cache
            for label, call in calls.items():
                start = time.perf_counter()
                await call(db)
                samples[label].append((time.perf_counter() - start) * 1000)
    await engine.dispose()
    return {label: statistics.median(values[1:]) for label, values in samples.items()}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    from tests.pg_cluster import Cluster

    server = Cluster()
    try:
        name = server.fresh_database()
        person_url = await seed(server, name, args.tickets)
        owner = await time_queries(server.url(name), args.rounds)
        person = await time_queries(person_url, args.rounds)
        server.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        server.admin("DROP ROLE IF EXISTS bench_tech")
    finally:
        server.close()
    print(f"{args.tickets:,} open tickets in two accounts; medians of {args.rounds} rounds (ms)")
    print(f"{'query':20} {'schema owner (no RLS)':>22} {'person role (RLS)':>18}")
    for label in owner:
        print(f"{label:20} {owner[label]:22.1f} {person[label]:18.1f}")


if __name__ == "__main__":
    asyncio.run(main())
