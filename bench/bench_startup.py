"""Start-up: process start to the ticket picker drawn and ready, against a bare Textual app.

Run: ``python bench/bench_startup.py [--rounds 10] [--tickets 200]``

Both apps run as fresh processes on a real pseudo-terminal (120x40), alternating,
in the same run. Each child writes ``time.perf_counter()`` (CLOCK_MONOTONIC, shared
with the parent on Linux) to a pipe at its milestones; the parent subtracts the
moment it spawned the process, so interpreter start-up and imports count.

- bare:  a Textual app whose only widget is one Label; ready = its first refresh.
- rflow: ``rflow --db URL --user EMAIL`` through the real CLI entry point
         (rflow_tui byte-compiled first, as a pip install leaves it);
         paint = the splash drawn (the store is not open yet),
         ready = the picker showing the first page of tickets, drawn.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# --- child side ---------------------------------------------------------------------


def _signal(fd: int, milestone: str) -> None:
    os.write(fd, f"{milestone} {time.perf_counter()!r}\n".encode())
    if milestone == "ready":
        status = Path("/proc/self/status").read_text()
        peak = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
        os.write(fd, f"peak_kib {peak}\n".encode())


def child_bare(fd: int) -> None:
    from textual.app import App, ComposeResult
    from textual.widgets import Label

    class Bare(App):
        def compose(self) -> ComposeResult:
            yield Label("ready")

        def on_mount(self) -> None:
            self.call_after_refresh(self.done)

        def done(self) -> None:
            _signal(fd, "ready")
            self.exit()

    Bare().run()


def child_rflow(fd: int, url: str, email: str) -> None:
    from rflow_tui.cli import main

    # Watch the real app from outside: wrap its mount to report paint and readiness.
    from rflow_tui.tui import app as app_module

    original_mount = app_module.RflowApp.on_mount

    def on_mount(self) -> None:
        original_mount(self)
        self.call_after_refresh(lambda: _signal(fd, "paint"))
        self.set_interval(0.002, lambda: check(self))

    def check(self) -> None:
        try:
            table = self.screen.query_one("#tickets")
        except Exception:
            return
        if table.row_count and not table.loading and not getattr(self, "_bench_done", False):
            self._bench_done = True
            self.call_after_refresh(lambda: (_signal(fd, "ready"), self.exit()))

    app_module.RflowApp.on_mount = on_mount
    main(["--db", url, "--user", email])


# --- parent side --------------------------------------------------------------------


def _run_child(args: list[str]) -> dict[str, float]:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    ready_r, ready_w = os.pipe()
    env = dict(os.environ, TERM="xterm-256color", BENCH_READY_FD=str(ready_w), COLUMNS="120", LINES="40")

    def drain() -> None:
        try:
            while os.read(master, 65536):
                pass
        except OSError:
            pass

    drainer = threading.Thread(target=drain, daemon=True)
    drainer.start()
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, __file__, *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        pass_fds=(ready_w,),
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )
    os.close(slave)
    os.close(ready_w)
    marks: dict[str, float] = {}
    with os.fdopen(ready_r) as reader:
        for line in reader:
            name, value = line.split()
            marks[name] = float(value) if name == "peak_kib" else float(value) - start
    code = proc.wait(timeout=60)
    os.close(master)
    if code != 0 or "ready" not in marks:
        raise RuntimeError(f"child {args} exited {code} with marks {marks}")
    return marks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--tickets", type=int, default=200)
    parser.add_argument("--child", choices=("bare", "rflow"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        fd = int(os.environ["BENCH_READY_FD"])
        if args.child == "bare":
            child_bare(fd)
        else:
            from bench.bench_picker import TECH_EMAIL

            child_rflow(fd, args.url, TECH_EMAIL)
        return

    import compileall

    from bench.bench_picker import seed_store

    # Bytecode as a pip install leaves it (this environment sets PYTHONDONTWRITEBYTECODE,
    # which would otherwise make every child recompile rflow_tui from source).
    compileall.compile_dir(ROOT / "rflow_tui", quiet=1)
    with tempfile.TemporaryDirectory(prefix="rflow-bench-") as tmp:
        url = seed_store(Path(tmp), args.tickets)
        _run_child(["--child", "rflow", "--url", url])  # warm the OS file cache and bytecode once
        _run_child(["--child", "bare"])
        bare, paint, ready, bare_peak, rflow_peak = [], [], [], [], []
        for _ in range(args.rounds):
            marks = _run_child(["--child", "bare"])
            bare.append(marks["ready"] * 1000)
            bare_peak.append(marks["peak_kib"] / 1024)
            marks = _run_child(["--child", "rflow", "--url", url])
            paint.append(marks["paint"] * 1000)
            ready.append(marks["ready"] * 1000)
            rflow_peak.append(marks["peak_kib"] / 1024)

    def stats(values: list[float]) -> dict[str, float]:
        return {
            "median_ms": round(statistics.median(values), 1),
            "min_ms": round(min(values), 1),
            "max_ms": round(max(values), 1),
        }

    report = {
        "rounds": args.rounds,
        "tickets": args.tickets,
        "bare_textual_label_ready": stats(bare),
        "rflow_splash_painted": stats(paint),
        "rflow_picker_ready": stats(ready),
        "ratio_picker_ready_to_bare_median": round(statistics.median(ready) / statistics.median(bare), 2),
        "peak_rss_mib_at_ready": {
            "bare": round(statistics.median(bare_peak), 1),
            "rflow": round(statistics.median(rflow_peak), 1),
        },
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
