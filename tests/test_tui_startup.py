"""Start-up: the first paint waits for no store or LLM import, and a refused user
gets the how-to-fix message and exit status 2 from the real ``rflow`` command."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time

HEAVY = ("sqlalchemy", "sqlmodel", "aiosqlite", "alembic", "anthropic", "pydantic")


def test_everything_before_the_first_paint_imports_no_store_or_llm_library():
    # Run ``rflow`` through cli.main up to the moment the app would start running.
    code = (
        "import sys\n"
        "import rflow_tui.commands.app as app_command\n"
        "from rflow_tui.cli import main\n"
        "from rflow_tui.commands.common import load\n"
        "def run_app(args, start='auto'):\n"
        "    from rflow_tui.tui.app import RflowApp\n"
        "    RflowApp(load(args), start=start)\n"
        f"    print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
        "app_command.run_app = run_app\n"
        "main(['--db', 'x.sqlite3', '--user', 'a@b.test'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def _run_in_terminal(argv: list[str], env: dict[str, str], timeout: float = 30.0) -> tuple[int, str]:
    """Run ``argv`` on a pseudo-terminal (the app needs one); return (status, text without escapes)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    output = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
        elif proc.poll() is not None:
            break
    else:
        proc.kill()
    os.close(master)
    status = proc.wait(timeout=5)
    text = re.sub(
        r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()=>][A-Z0-9]?", "", output.decode(errors="replace")
    )
    return status, text


def test_a_user_who_may_not_log_in_is_refused_with_how_to_fix(tmp_path):
    env = dict(os.environ, RFLOW_CONFIG=str(tmp_path / "config.toml"), TERM="xterm-256color")
    env.pop("RFLOW_USER", None)
    rflow = [sys.executable, "-m", "rflow_tui", "--db", str(tmp_path / "desk.sqlite3")]
    subprocess.run(
        [*rflow, "init", "--account", "Contoso IT", "--email", "owner@contoso.test"],
        env=env,
        check=True,
        capture_output=True,
    )
    subprocess.run([*rflow, "users", "add", "gone@contoso.test"], env=env, check=True, capture_output=True)
    subprocess.run([*rflow, "users", "deactivate", "gone@contoso.test"], env=env, check=True, capture_output=True)

    status, text = _run_in_terminal([*rflow, "--user", "ghost@contoso.test"], env)
    assert status == 2
    assert "no user ghost@contoso.test; an owner or admin adds them with" in " ".join(text.split())

    status, text = _run_in_terminal([*rflow, "--user", "gone@contoso.test"], env)
    assert status == 2
    assert "gone@contoso.test is deactivated; an owner or admin can reactivate them" in " ".join(text.split())
