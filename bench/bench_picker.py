"""Picker with a big queue: open, filter, sort and page through 100,000 open tickets.

Run: ``python bench/bench_picker.py [--tickets 100000] [--rounds 5]``

Each measurement runs the real app headless (``App.run_test``) on a temporary
SQLite store seeded with that many open tickets. What it times, from the
moment the action starts to the table showing the result:

- open:   picker screen pushed -> first page of rows in the table
- filter: a search typed into the filter box (one keystroke per character,
          so the debounce runs as it does for a person) -> only matching rows shown
- sort:   Ctrl+S -> the table redrawn in the next order
- page:   cursor jumped to the last loaded row -> the next page appended

Peak memory (max RSS) is measured in fresh child processes, one with a tiny
queue and one with the big one, so the difference shows what the queue size
costs (the picker must never load every ticket).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TECH_EMAIL = "bench.tech@bench.test"
SUBJECTS = [
    "Outlook will not open",
    "Printer offline on floor {n}",
    "VPN will not connect from home",
    "Wi-Fi keeps dropping in meeting room {n}",
    "Mapped drive S: missing",
    "PC very slow after update",
    "Teams camera not detected",
    "OneDrive not syncing",
    "Password expired, locked out",
    "Lost phone with authenticator",
    "New starter needs laptop set-up",
    "Suspicious email with invoice link",
]
PEOPLE = ["Ann Lee", "Bob Marsh", "Chen Wu", "Dana Ortiz", "Eli Novak", "Fay Green", "Gus Patel", "Hana Sato"]


async def _seed(url: str, n_tickets: int) -> None:
    from sqlalchemy import insert

    from rflow_tui.db import open_store
    from rflow_tui.models import Ticket, utcnow
    from rflow_tui.services.users import add_user, create_account

    engine, open_db = await open_store(url)
    async with open_db() as db:
        owner = await create_account(db, name="Bench desk", owner_email="bench.owner@bench.test")
        await add_user(db, actor=owner, email=TECH_EMAIL, name="Bench Tech", role="l1_tech")
        rng = random.Random(7)
        now = utcnow()
        batch: list[dict] = []
        for n in range(n_tickets):
            created = now - timedelta(minutes=n_tickets - n)
            batch.append(
                dict(
                    account_id=owner.account_id,
                    ticket_id=f"T-{n + 1:06d}",
                    ticket_kind="internal",
                    subject=rng.choice(SUBJECTS).format(n=n % 9 + 1),
                    body="Reported by phone.",
                    requester=rng.choice(PEOPLE),
                    category="general",
                    status="open" if n % 10 else "in_progress",
                    created_at=created,
                    updated_at=created,
                )
            )
            if len(batch) == 5000:
                await db.exec(insert(Ticket), params=batch)
                batch = []
        if batch:
            await db.exec(insert(Ticket), params=batch)
        await db.commit()
    await engine.dispose()


def seed_store(folder: Path, n_tickets: int) -> str:
    """A fresh SQLite store with one desk, its L1 tech and ``n_tickets`` open tickets."""
    url = f"sqlite+aiosqlite:///{folder / f'bench-{n_tickets}.sqlite3'}"
    asyncio.run(_seed(url, n_tickets))
    return url


def bench_settings(url: str):
    from rflow_tui.config import LLMSettings, Settings

    return Settings(database_url=url, user=TECH_EMAIL, llm=replace(LLMSettings(), generator="none-in-bench"))


async def _until(pilot, predicate, timeout: float = 30.0) -> float:
    """Seconds until ``predicate()`` holds, checking every millisecond."""
    start = time.perf_counter()
    while not predicate():
        if time.perf_counter() - start > timeout:
            raise TimeoutError("the picker never reached the expected state")
        await pilot.pause(0.001)
    return time.perf_counter() - start


def _table(app):
    return app.screen.query_one("#tickets")


def _subjects(table) -> list[str]:
    return [str(table.get_cell_at((row, 1))) for row in range(table.row_count)]


def _ready(app) -> bool:
    """Rows on screen, as the tech sees them (the match count may still be on its way)."""
    try:
        table = _table(app)
    except Exception:
        return False
    return table.row_count > 0 and not table.loading


def _busy(app) -> bool:
    return any(w.is_running for w in app.workers)


def _type(app, *keys: str) -> None:
    """Keys as the terminal driver delivers them (no Pilot waits between them)."""
    from textual import events

    for key in keys:
        app.post_message(events.Key(key, key if len(key) == 1 else None))


async def _one_round(url: str, query: str, n_tickets: int) -> dict[str, float]:
    from rflow_tui.tui.app import RflowApp

    app = RflowApp(bench_settings(url))
    out: dict[str, float] = {}
    async with app.run_test(size=(130, 40)) as pilot:
        await _until(pilot, lambda: _ready(app))
        # open: a fresh picker screen (the app's own path from the F2 key)
        picker_cls = type(app.screen)
        start = time.perf_counter()
        app.switch_screen(picker_cls(app.ctx))
        await _until(pilot, lambda: type(app.screen) is picker_cls and _ready(app))
        out["open"] = time.perf_counter() - start

        start = time.perf_counter()
        _type(app, *query)
        await _until(pilot, lambda: _ready(app) and all(query in s.lower() for s in _subjects(_table(app))))
        out["filter"] = time.perf_counter() - start

        await pilot.press("escape")
        await _until(pilot, lambda: _ready(app) and not all(query in s.lower() for s in _subjects(_table(app))))
        _table(app).focus()
        before = _subjects(_table(app))[:20]
        start = time.perf_counter()
        _type(app, "ctrl+s")
        await _until(pilot, lambda: _ready(app) and _subjects(_table(app))[:20] != before)
        out["sort"] = time.perf_counter() - start

        table = _table(app)
        loaded = table.row_count
        if loaded >= n_tickets:
            return out
        start = time.perf_counter()
        table.move_cursor(row=loaded - 1)
        await _until(pilot, lambda: _table(app).row_count > loaded and not _busy(app))
        out["page"] = time.perf_counter() - start
        out["rows_in_table"] = _table(app).row_count
    return out


def timings(url: str, n_tickets: int, rounds: int, query: str = "printer") -> dict[str, dict[str, float]]:
    results = [asyncio.run(_one_round(url, query, n_tickets)) for _ in range(rounds)]
    summary = {}
    for key in ("open", "filter", "sort", "page"):
        if key not in results[0]:
            continue
        values = [r[key] * 1000 for r in results]
        summary[key] = {
            "median_ms": round(statistics.median(values), 1),
            "min_ms": round(min(values), 1),
            "max_ms": round(max(values), 1),
        }
    if "rows_in_table" in results[-1]:
        summary["rows_in_table"] = {"after_one_page_more": results[-1]["rows_in_table"]}
    return summary


def _child_peak(url: str, n_tickets: int) -> None:
    """Child mode: open the picker, filter, sort and page once, then print peak RSS in KiB.

    VmHWM, not getrusage: Linux carries ru_maxrss across exec, so a child would
    report its parent's peak.
    """
    asyncio.run(_one_round(url, "printer", n_tickets))
    status = Path("/proc/self/status").read_text()
    peak = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    print(json.dumps({"max_rss_kib": int(peak)}))


def peak_rss_kib(url: str, n_tickets: int, runs: int = 3) -> int:
    """Median max RSS of ``runs`` fresh processes (one process is noisy)."""
    peaks = []
    for _ in range(runs):
        proc = subprocess.run(
            [sys.executable, __file__, "--child-peak", url, "--tickets", str(n_tickets)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        peaks.append(json.loads(proc.stdout.strip().splitlines()[-1])["max_rss_kib"])
    return int(statistics.median(peaks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child-peak", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_peak:
        _child_peak(args.child_peak, args.tickets)
        return
    with tempfile.TemporaryDirectory(prefix="rflow-bench-") as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        big = seed_store(folder, args.tickets)
        print(f"seeded {args.tickets:,} tickets in {time.perf_counter() - start:.1f}s", file=sys.stderr)
        small = seed_store(folder, 100)
        report = {
            "tickets": args.tickets,
            "rounds": args.rounds,
            "timings": timings(big, args.tickets, args.rounds),
            "timings_100_tickets": timings(small, 100, args.rounds),
            "peak_rss_mib": {
                "100_tickets": round(peak_rss_kib(small, 100) / 1024, 1),
                f"{args.tickets}_tickets": round(peak_rss_kib(big, args.tickets) / 1024, 1),
            },
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
