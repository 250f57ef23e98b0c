"""The PSA both ways against the loopback ConnectWise (tests/fake_psa.py): an outbox drain of
1,000 notes with about 10 % of the note posts failing, and a pull of 5,000 tickets.

Run: ``python bench/bench_psa.py [--backends sqlite postgres] [--concurrency 1 4] [--latency 0 50]``

Drain: 1,000 walks escalated on 1,000 PSA tickets (pulled first), then
``psa_delivery.drain`` (what `rflow psa push` runs) until nothing is pending, each pass
after the first run as if the backoff had passed (``now`` moved on two hours, so the
figure is the work, not the waiting). Injected on ``POST .../notes``, each at random
(seeded): 4 % a 500 (nothing stored), 3 % a timeout after the note was stored (the fake
answers after 0.7 s; the adapter gives up at 0.5 s), 3 % a 429 with ``Retry-After: 1``
(waited inside the call). Duplicates: a marker on more than one note of its ticket, or
an item delivered with no note at all; must be 0. ``--latency`` adds that many ms to
every answer of the fake (a real PSA is not on loopback).

Pull: 5,000 open tickets on the board, ``psa_pull.pull`` at page size 100 and 1,000
(ConnectWise's largest), then again (all unchanged), then ``pull_changes`` after 50
changed upstream. Time, requests made, and the peak of Python memory during the pull
(tracemalloc, in a second run of the same pull: it slows what it measures; it counts
the fake's own encoding of each page too, which runs in this process).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import re
import sys
import tempfile
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KEYS = {"RFLOW_PSA_PUBLIC_KEY": "pub", "RFLOW_PSA_PRIVATE_KEY": "priv", "RFLOW_PSA_CLIENT_ID": "cid"}
NOTES = r"/service/tickets/\d+/notes"
STATUSES = {"resolved": "Completed", "escalated": "Escalated to L2"}


def _adapter(api, *, timeout: float = 15.0, concurrency: int = 4):
    from rflow_tui.config import PsaSettings
    from rflow_tui.psa.registry import make_adapter

    settings = PsaSettings(
        kind="connectwise",
        api_url=api.url,
        company="contoso",
        board="Help Desk",
        timeout_seconds=timeout,
        max_concurrency=concurrency,
    )
    return make_adapter(settings, KEYS)


async def _desk(url: str):
    from rflow_tui.db import open_store
    from rflow_tui.services.users import add_user, create_account

    engine, open_db = await open_store(url)
    async with open_db() as db:
        owner = await create_account(db, name="Bench desk", owner_email="bench.owner@bench.test")
        tech = await add_user(db, actor=owner, email="bench.tech@bench.test", name="Bench Tech", role="l1_tech")
    return engine, open_db, tech


def _tickets(n: int, *, latency_ms: float = 0):
    from tests.fake_psa import FakeConnectWise

    api = FakeConnectWise()
    for ticket_id in range(1, n + 1):
        api.add_ticket(ticket_id, f"Ticket {ticket_id}: printer offline", description="It was fine yesterday.\n" * 5)
    api.latency = latency_ms / 1000
    return api


async def drain_bench(url: str, *, notes: int, concurrency: int, latency_ms: float) -> dict[str, float]:
    from rflow_tui.models import PsaOutboxItem, utcnow
    from rflow_tui.psa.base import MARKER_PREFIX
    from rflow_tui.services import psa_pull
    from rflow_tui.services.psa_delivery import drain
    from rflow_tui.services.walks import endings

    api = _tickets(notes)
    engine, open_db, tech = await _desk(url)
    adapter = _adapter(api, timeout=0.5, concurrency=concurrency)
    adapter.http.backoff = 0.01
    try:
        async with open_db() as db:
            await psa_pull.pull(db, actor=tech, adapter=adapter, page_size=1000)
            for ticket_id in range(1, notes + 1):
                await endings.escalate_without_walk(
                    db, actor=tech, ticket_id=str(ticket_id), ticket_kind="psa", reason="toner", reason_category="other"
                )
        api.latency = latency_ms / 1000
        faults = [
            dict(status=500, chance=0.04),
            dict(status=200, chance=0.03, hang=0.7),
            dict(status=429, chance=0.03, headers={"Retry-After": "1"}),
        ]
        for fault in faults:
            api.fail("POST", NOTES, times=10**9, **fault)  # type: ignore[arg-type]
        posts_before, requests_before = api.count("POST", NOTES), adapter.requests_made
        began = time.perf_counter()
        now = utcnow()
        passes = delivered = 0
        while passes < 20:
            passes += 1
            done = await drain(
                open_db, actor=tech, adapter=adapter, statuses=STATUSES, concurrency=concurrency, now=now
            )
            delivered += done.delivered
            if done.waiting == 0 and done.delivered == 0:
                break
            now += timedelta(hours=2)
        elapsed = time.perf_counter() - began
        injected = sum(10**9 - fault.times for fault in api.faults)
        pattern = re.compile(re.escape(f"[{MARKER_PREFIX}") + r"([0-9a-f]+)\]")
        per_ticket = {n: [m for note in ns for m in pattern.findall(note["text"])] for n, ns in api.notes.items()}
        duplicates = sum(len(markers) - len(set(markers)) for markers in per_ticket.values())
        missing = sum(1 for markers in per_ticket.values() if not markers)
        async with open_db() as db:
            from sqlmodel import select

            states = [item.state for item in await db.exec(select(PsaOutboxItem))]
    finally:
        await adapter.aclose()
        await engine.dispose()
        api.close()
    return {
        "seconds": elapsed,
        "passes": passes,
        "delivered": states.count("delivered"),
        "pending": states.count("pending"),
        "failed": states.count("failed"),
        "injected": injected,
        "posts": api.count("POST", NOTES) - posts_before,
        "requests": adapter.requests_made - requests_before,
        "duplicates": duplicates,
        "missing": missing,
        "peak_in_flight": api.peak,
    }


async def pull_bench(url: str, *, tickets: int, page_size: int) -> dict[str, float]:
    from rflow_tui.services import psa_pull

    api = _tickets(tickets)
    results: dict[str, float] = {}
    try:
        for run in ("time", "memory"):
            engine, open_db, tech = await _desk(url)
            adapter = _adapter(api)
            try:
                async with open_db() as db:
                    if run == "memory":
                        tracemalloc.start()
                    began = time.perf_counter()
                    first = await psa_pull.pull(db, actor=tech, adapter=adapter, page_size=page_size)
                    took = time.perf_counter() - began
                    if run == "memory":
                        results["peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
                        tracemalloc.stop()
                        continue
                    results.update(seconds=took, requests=adapter.requests_made, new=first.new)
                    began = time.perf_counter()
                    again = await psa_pull.pull(db, actor=tech, adapter=adapter, page_size=page_size)
                    results.update(again_seconds=time.perf_counter() - began, again_skipped=again.skipped)
                    for ticket_id in range(1, 51):
                        api.change_ticket(ticket_id, summary=f"Ticket {ticket_id}: printer on fire")
                    before = adapter.requests_made
                    began = time.perf_counter()
                    changes = await psa_pull.pull_changes(db, actor=tech, adapter=adapter, page_size=page_size)
                    results.update(
                        changes_seconds=time.perf_counter() - began,
                        changes_updated=changes.updated,
                        changes_requests=adapter.requests_made - before,
                    )
            finally:
                await adapter.aclose()
                await engine.dispose()
    finally:
        api.close()
    return results


def _url(server, folder: str, name: str) -> str:
    """A fresh migrated database: on the PostgreSQL server when there is one, else a SQLite file."""
    if server is not None:
        return server.url(server.fresh_database())
    return f"sqlite+aiosqlite:///{Path(folder) / name / 'rflow.sqlite3'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"], choices=["sqlite", "postgres"])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--latency", type=float, nargs="+", default=[0, 50], help="ms added to each answer")
    parser.add_argument("--notes", type=int, default=1000)
    parser.add_argument("--tickets", type=int, default=5000)
    parser.add_argument("--skip", choices=["drain", "pull"], action="append", default=[])
    args = parser.parse_args()
    server = None
    try:
        for backend in args.backends:
            if backend == "postgres" and server is None:
                from tests.pg_cluster import start_server

                server = start_server()
            with tempfile.TemporaryDirectory() as folder:
                url = functools.partial(_url, server if backend == "postgres" else None, folder)

                if "drain" not in args.skip:
                    for latency in args.latency:
                        for concurrency in args.concurrency:
                            r = asyncio.run(
                                drain_bench(
                                    url(f"d{latency}{concurrency}"),
                                    notes=args.notes,
                                    concurrency=concurrency,
                                    latency_ms=latency,
                                )
                            )
                            print(
                                f"{backend:8} drain {args.notes} notes, latency {latency:g} ms, concurrency "
                                f"{concurrency}: {r['seconds']:.2f} s in {r['passes']} passes; delivered "
                                f"{r['delivered']}, pending {r['pending']}, failed {r['failed']}; injected "
                                f"{r['injected']} faults; {r['posts']} note posts, {r['requests']} requests; "
                                f"peak in flight {r['peak_in_flight']}; duplicates {r['duplicates']}, "
                                f"tickets without their note {r['missing']}",
                                flush=True,
                            )
                if "pull" not in args.skip:
                    for page_size in (100, 1000):
                        r = asyncio.run(pull_bench(url(f"p{page_size}"), tickets=args.tickets, page_size=page_size))
                        print(
                            f"{backend:8} pull {args.tickets} tickets, page {page_size}: {r['seconds']:.2f} s, "
                            f"{r['requests']} requests, {r['new']} new, peak Python memory {r['peak_mib']:.1f} MiB; "
                            f"again {r['again_seconds']:.2f} s ({r['again_skipped']} skipped); 50 changed: "
                            f"{r['changes_seconds']:.2f} s, {r['changes_requests']} requests, "
                            f"{r['changes_updated']} updated",
                            flush=True,
                        )
    finally:
        if server is not None:
            server.close()


if __name__ == "__main__":
    main()
