"""The real ``rflow`` on a pseudo-terminal: what a technician's terminal actually receives."""

from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import sys
import termios
import time


class Terminal:
    """``python -m rflow_tui ARGV`` with its stdin, stdout and stderr on one pty."""

    def __init__(self, argv: list[str], env: dict[str, str], rows: int = 40, cols: int = 120) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rflow_tui", *argv],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**env, "TERM": "xterm-256color"},
            start_new_session=True,
        )
        os.close(slave)
        self.output = b""

    def _read(self, wait: float) -> bool:
        """Read what is there within ``wait`` seconds; False once the other side has closed."""
        if not select.select([self.master], [], [], wait)[0]:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: the process exited and the pty closed
            return False
        self.output += chunk
        return bool(chunk)

    def read_until(self, marker: bytes, timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        start = len(self.output)
        while marker not in self.output[start:]:
            assert time.monotonic() < end, f"never saw {marker!r}; the tail was {self.output[-2000:]!r}"
            assert self._read(0.1), f"the process ended before {marker!r}; the tail was {self.output[-2000:]!r}"

    def settle(self, seconds: float = 0.5) -> None:
        """Keep reading for a while (a repaint, a poll)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end and self._read(0.05):
            pass

    def send(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def wait(self, timeout: float = 60.0) -> int:
        """Read to the end (the pty closes when the process exits) and return the exit status."""
        end = time.monotonic() + timeout
        while self._read(0.05):
            assert time.monotonic() < end, f"the process did not exit; the tail was {self.output[-2000:]!r}"
        return self.proc.wait(timeout=5)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_on_pty(argv: list[str], env: dict[str, str], timeout: float = 60.0) -> tuple[int, bytes]:
    """A CLI command on a pty (so it believes it prints to a person): its status and all it wrote."""
    with Terminal(argv, env) as term:
        status = term.wait(timeout)
        return status, term.output
