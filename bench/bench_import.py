"""Ticket import: ``rflow tickets import`` of 100,000 tickets, its time and its peak memory.

Run: ``python bench/bench_import.py [--tickets 100000] [--rounds 3] [--format csv|json] [--code DIR]``

Each round makes a fresh SQLite desk (``rflow init``), writes the tickets to a
file (subjects, bodies of a few sentences, requesters, categories: about 250
bytes a ticket) and runs the import in a fresh child process, as a person would.
The child reports:

- import: seconds inside ``rflow tickets import`` (store opened, file read,
  every row checked, all rows written, committed), wall clock and the process's
  CPU time (the machine is shared: CPU time moves less with its load);
- peak RSS: VmHWM from /proc/self/status at the end (not getrusage: Linux
  carries ru_maxrss across exec, so a child would report its parent's peak).

``--code DIR`` runs another checkout's rflow_tui (to measure a version before a change).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SUBJECTS = [
    "Outlook will not open",
    "Printer offline on floor {n}",
    "VPN drops every {n} minutes",
    "Wi-Fi keeps dropping in room {n}",
    "Mapped drive S: missing",
    "PC slow after update {n}",
]
SENTENCES = [
    "The user says it started this morning.",
    "A restart did not help.",
    "It happens on the docking station only.",
    "Error code 0x{n:x} shows briefly.",
    "Colleagues on the same floor are fine.",
    "They need it for a meeting at {n}:00.",
]
PEOPLE = ["Ann Lee", "Bob Marsh", "Chen Wu", "Dana Ortiz", "Eli Novak", "Fay Green"]
CATEGORIES = ["email", "printing", "network", "storage", "hardware", "accounts"]


def write_tickets(path: Path, n: int, kind: str) -> None:
    rng = random.Random(7)
    fields = ("ticket_id", "subject", "body", "requester", "category")

    def row(i: int) -> dict[str, str]:
        body = " ".join(rng.choice(SENTENCES).format(n=rng.randint(1, 999)) for _ in range(4))
        return {
            "ticket_id": f"T-{100000 + i}",
            "subject": rng.choice(SUBJECTS).format(n=rng.randint(1, 40)),
            "body": body,
            "requester": rng.choice(PEOPLE),
            "category": rng.choice(CATEGORIES),
        }

    with open(path, "w", encoding="utf-8", newline="") as out:
        if kind == "json":
            json.dump([row(i) for i in range(n)], out)
            return
        writer = csv.DictWriter(out, fieldnames=fields)
        writer.writeheader()
        for i in range(n):
            writer.writerow(row(i))


def child(argv: list[str]) -> None:
    """Child mode: run the CLI once, then print the import time and the peak RSS (KiB)."""
    from rflow_tui.cli import main as rflow

    start, cpu = time.perf_counter(), time.process_time()
    code = rflow(argv)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    status = Path("/proc/self/status").read_text()
    peak = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    print(json.dumps({"code": code, "seconds": seconds, "cpu": cpu, "max_rss_kib": int(peak)}))


def run_child(code_dir: Path, env: dict[str, str], argv: list[str]) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", "--", *argv],
        capture_output=True,
        text=True,
        cwd=code_dir,
        env={**env, "PYTHONPATH": str(code_dir)},
    )
    if proc.returncode != 0:
        raise SystemExit(f"child failed: {proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if result["code"] != 0:
        raise SystemExit(f"rflow exited {result['code']}: {proc.stderr[-2000:]}")
    return result


def one_round(code_dir: Path, n: int, kind: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="rflow-bench-import-") as tmp:
        folder = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RFLOW_")}
        env.update(RFLOW_CONFIG=str(folder / "config.toml"), RFLOW_DATABASE_URL=str(folder / "desk.sqlite3"))
        run_child(
            code_dir, env, ["init", "--account", "Bench desk", "--email", "owner@bench.test", "--no-starter-flows"]
        )
        data = folder / f"tickets.{kind}"
        write_tickets(data, n, kind)
        result = run_child(code_dir, env, ["tickets", "import", str(data)])
        result["file_mib"] = data.stat().st_size / 2**20
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--format", choices=("csv", "json"), default="csv")
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout whose rflow_tui to run")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.child:
        child([a for a in rest if a != "--"])
        return
    results = [one_round(args.code.resolve(), args.tickets, args.format) for _ in range(args.rounds)]
    seconds = [r["seconds"] for r in results]
    cpu = [r["cpu"] for r in results]
    peaks = [r["max_rss_kib"] / 1024 for r in results]
    print(
        f"{args.tickets:,} tickets from {args.format.upper()} ({results[0]['file_mib']:.1f} MiB), "
        f"{args.rounds} rounds, code {args.code}"
    )
    print(
        f"  import: median {statistics.median(seconds):.2f} s (min {min(seconds):.2f}, max {max(seconds):.2f}); "
        f"CPU median {statistics.median(cpu):.2f} s"
    )
    print(f"  peak RSS: median {statistics.median(peaks):.0f} MiB (min {min(peaks):.0f}, max {max(peaks):.0f})")


if __name__ == "__main__":
    main()
