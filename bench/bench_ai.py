"""AI generation benchmarks (results go in BENCHMARKS.md, section "AI generation").

1. Answer to next node validated and stored: ``advance_ai_build`` with the replay
   generator on a temporary SQLite store, timed from the call to its return.
2. Import cost of ``rflow_tui.cli`` in a fresh interpreter, without and with the
   Anthropic generator module and the SDK loaded.

Run: .venv/bin/python bench/bench_ai.py
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 300
IMPORT_RUNS = 15


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def advance_latency() -> list[float]:
    from rflow_tui.ai.fixture import DEMO_FIXTURE, ReplayGenerator
    from rflow_tui.db import open_store
    from rflow_tui.services.demo import seed_demo
    from rflow_tui.services.tickets import get_ticket, problem_text
    from rflow_tui.services.walks import ai_steps
    from rflow_tui.services.walks import start as walk_start

    folder = Path(tempfile.mkdtemp(prefix="rflow-bench-"))
    engine, factory = await open_store(f"sqlite+aiosqlite:///{folder / 'bench.sqlite3'}")
    async with factory() as db:
        desk = await seed_demo(db)
        ticket = await get_ticket(db, desk.tech.account_id, "T-1001")
    replay = ReplayGenerator(DEMO_FIXTURE)
    timings = []
    for _ in range(RUNS):
        async with factory() as db:
            walk = await walk_start.start_ai_build_session(
                db, actor=desk.tech, ticket_id="T-1001", category=ticket.category, problem_text=problem_text(ticket)
            )
            first = await ai_steps.advance_ai_build(
                db, actor=desk.tech, session_id=walk.id, generator=replay, judge=None
            )
            started = time.perf_counter()
            await ai_steps.advance_ai_build(
                db,
                actor=desk.tech,
                session_id=walk.id,
                generator=replay,
                judge=None,
                node_id=first["id"],
                answer="no",
                note="bench",
            )
            timings.append((time.perf_counter() - started) * 1000)
    await engine.dispose()
    return timings


def import_ms(code: str) -> list[float]:
    out = []
    for _ in range(IMPORT_RUNS):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> None:
    timings = asyncio.run(advance_latency())
    print(
        f"answer -> next node validated and stored (replay, SQLite), {RUNS} runs: "
        f"median {statistics.median(timings):.2f} ms, p95 {pct(timings, 0.95):.2f} ms, max {max(timings):.2f} ms"
    )
    subprocess.run([sys.executable, "-c", "import rflow_tui.cli"], check=True)  # warm the byte-code cache
    bare = import_ms("pass")
    cli = import_ms("import rflow_tui.cli")
    with_sdk = import_ms("import rflow_tui.cli, rflow_tui.ai.anthropic, anthropic")
    print(f"interpreter alone: median {statistics.median(bare):.0f} ms")
    print(f"import rflow_tui.cli: median {statistics.median(cli):.0f} ms")
    print(
        f"import rflow_tui.cli + Anthropic generator + SDK: median {statistics.median(with_sdk):.0f} ms "
        f"(+{statistics.median(with_sdk) - statistics.median(cli):.0f} ms)"
    )


if __name__ == "__main__":
    main()
