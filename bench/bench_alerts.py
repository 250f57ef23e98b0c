"""Escalation alerts: a drain of 200 alerts with about 10 % of the sends failing, against the
loopback webhook (tests/fake_alerts.py) through apprise.

Run: ``python bench/bench_alerts.py [--backends sqlite postgres] [--alerts 200] [--concurrency 4]``

200 walks escalated without a walk (each queues its alert in its own transaction), then
``alert_outbox.drain`` (what `rflow alerts push` runs) until nothing is pending, each pass
after the first as if the backoff had passed (``now`` moved on two hours: the figure is the
work, not the waiting). Injected at random (seeded) on each POST: 6 % a 500, 2 % a 429 with
Retry-After, 2 % an answer held 1.5 s after the request was read (apprise gives up at 1 s:
the alert arrived but nobody was told). Duplicates: an idempotency key the receiver took in
(answered 2xx, held answers included) more than once; must be 0. The held ones end
``failed`` as "may have arrived" (they did).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


async def drain_bench(url: str, *, alerts: int, concurrency: int, seed: int = 7) -> dict[str, float]:
    from sqlmodel import select

    from rflow_tui.config import AlertSettings
    from rflow_tui.db import open_store
    from rflow_tui.models import AlertOutboxItem, Ticket, utcnow
    from rflow_tui.services import alert_outbox
    from rflow_tui.services.users import add_user, create_account
    from rflow_tui.services.walks import endings
    from tests.fake_alerts import FakeWebhook, Plan

    chance = random.Random(seed)

    def decide() -> Plan:
        roll = chance.random()
        if roll < 0.06:
            return Plan(status=500)
        if roll < 0.08:
            return Plan(status=429, headers={"Retry-After": "5"})
        if roll < 0.10:
            return Plan(delay=1.5)
        return Plan()

    hook = FakeWebhook(decide)
    engine, open_db = await open_store(url)
    try:
        async with open_db() as db:
            owner = await create_account(db, name="Bench desk", owner_email="bench.owner@bench.test")
            tech = await add_user(db, actor=owner, email="bench.tech@bench.test", name="Bench Tech", role="l1_tech")
            for n in range(1, alerts + 1):
                db.add(Ticket(account_id=owner.account_id, ticket_id=f"B-{n}", subject=f"Printer {n} offline"))
            await db.commit()
            began = time.perf_counter()
            for n in range(1, alerts + 1):
                await endings.escalate_without_walk(
                    db, actor=tech, ticket_id=f"B-{n}", reason="toner smeared", reason_category="hardware"
                )
            escalating = time.perf_counter() - began
        settings = AlertSettings(urls=(hook.url(),), timeout_seconds=1.0)
        now = utcnow()
        passes = 0
        began = time.perf_counter()
        while passes < 20:
            passes += 1
            done = await alert_outbox.drain(open_db, actor=tech, alerts=settings, concurrency=concurrency, now=now)
            if done.waiting == 0 and done.delivered == 0:
                break
            now += timedelta(hours=2)
        elapsed = time.perf_counter() - began
        async with open_db() as db:
            states = Counter(item.state for item in await db.exec(select(AlertOutboxItem)))
    finally:
        await engine.dispose()
        hook.close()
    keys = Counter(r.key for r in hook.accepted)  # what the receiver took in and answered 2xx (held ones too)
    return {
        "escalate_ms_each": escalating / alerts * 1000,
        "seconds": elapsed,
        "passes": passes,
        "delivered": states["delivered"],
        "failed_unconfirmed": states["failed"],
        "pending": states["pending"],
        "posts": len(hook.received),
        "faults": sum(1 for r in hook.received if not 200 <= r.answered < 300) + states["failed"],
        "arrived": len(keys),
        "duplicates": sum(n - 1 for n in keys.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backends", nargs="+", default=["sqlite"])
    parser.add_argument("--alerts", type=int, default=200)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4])
    args = parser.parse_args()
    server = None
    try:
        for backend in args.backends:
            for concurrency in args.concurrency:
                with tempfile.TemporaryDirectory() as folder:
                    if backend == "sqlite":
                        url = f"sqlite+aiosqlite:///{folder}/bench.sqlite3"
                    else:
                        from tests.pg_cluster import start_server

                        server = server or start_server()
                        url = server.url(server.fresh_database())
                    result = asyncio.run(drain_bench(url, alerts=args.alerts, concurrency=concurrency))
                shown = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in result.items())
                print(f"{backend} concurrency {concurrency}: {shown}", flush=True)
    finally:
        if server is not None:
            server.close()


if __name__ == "__main__":
    main()
