"""Commands that open the terminal app: the default run, ``demo`` and ``escalations``."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from rflow_tui.commands.common import CommandError, load
from rflow_tui.commands.output import say


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="open the app on a demo desk (no network, no API key)",
        description="A tech gets a fresh demo desk; --as engineer or owner opens the last one, so a second "
        "terminal can watch what the tech escalates.",
    )
    p.add_argument(
        "--as",
        dest="role",
        choices=("tech", "engineer", "owner"),
        default="tech",
        help="who to be: the L1 tech (default, a fresh desk), an engineer with coverage, or the owner "
        "(both on the last demo desk)",
    )
    p.add_argument("--new", action="store_true", help="always make a fresh demo desk")
    p.add_argument(
        "--last", action="store_true", help="reopen your last demo desk (after a crash: your walk is offered to resume)"
    )
    p.set_defaults(handler=run_demo)
    sub.add_parser("escalations", help="open the live escalations screen (engineers)").set_defaults(
        handler=lambda args: run_app(args, start="escalations")
    )


def _run(settings, start: str = "auto") -> int:
    from rflow_tui.tui.app import RflowApp

    app = RflowApp(settings, start=start)
    code = app.run()
    return code or 0


def run_app(args, start: str = "auto") -> int:
    return _run(load(args), start)


def run_demo(args) -> int:
    from rflow_tui.config import load_settings
    from rflow_tui.services import demo

    email = {"tech": demo.TECH_EMAIL, "engineer": demo.ENGINEER_EMAIL, "owner": demo.OWNER_EMAIL}[args.role]
    reuse = not args.new and (args.last or args.role != "tech")
    folder = last_demo_desk() if reuse else None
    if folder is None:
        if args.last:
            raise CommandError("there is no last demo desk of yours to reopen: `rflow demo` makes one")
        folder = new_demo_desk(args.config)
        say(f"a new demo desk at {folder}")
    else:
        say(f"opening your last demo desk, {folder} (--new for a fresh one)")
    config = folder / DEMO_CONFIG
    database = f"sqlite+aiosqlite:///{folder / DEMO_DB}"  # the demo's own, whatever RFLOW_DATABASE_URL says
    start = "auto" if args.role == "tech" else "escalations"  # the watcher starts where escalations arrive
    rflow = command_path()
    reopen = f"{rflow} demo --last" + ("" if args.role == "tech" else f" --as {args.role}")
    say(f"  reopen it (even after a crash): {reopen}")
    say(f"  watch it (engineer):            {rflow} demo --as engineer")
    code = _run(load_settings(config, database_url=database, user=email), start)
    say(f"demo desk kept at {folder}; reopen it with {reopen}")
    return code


DEMO_CONFIG = "config.toml"
DEMO_DB = "demo.sqlite3"
LAST_DEMO = "last-demo-desk"  # in this OS user's own state folder: names the folder of their last demo desk


def _last_demo_pointer() -> Path:
    from platformdirs import user_state_path

    return user_state_path("rflow", appauthor=False) / LAST_DEMO


def last_demo_desk() -> Path | None:
    """This OS user's last demo desk's folder, if it is still there (and theirs)."""
    try:
        folder = Path(_last_demo_pointer().read_text(encoding="utf-8").strip())
    except (OSError, UnicodeDecodeError):
        return None
    if not ((folder / DEMO_CONFIG).is_file() and (folder / DEMO_DB).is_file()):
        return None
    return folder if folder.stat().st_uid == os.getuid() else None


def _remember_demo_desk(folder: Path) -> None:
    """Point at ``folder`` as the last demo desk; a pointer that cannot be written is said, never a crash."""
    pointer = _last_demo_pointer()
    try:
        pointer.parent.mkdir(parents=True, exist_ok=True)
        pointer.write_text(str(folder), encoding="utf-8")
    except OSError as exc:
        say(f"rflow: could not remember this demo desk at {pointer} ({exc.strerror}); open it with its --config")


def new_demo_desk(base_config: str | None) -> Path:
    """Seed a demo desk in a new temp folder, with a config beside it that keeps the recorded AI."""
    from rflow_tui.config import load_settings

    base = load_settings(base_config, user=None, allow_missing=True) if base_config else None
    folder = Path(tempfile.mkdtemp(prefix="rflow-demo-"))
    try:
        _seed_demo_desk(folder, base)
    except BaseException:  # a start that failed leaves no half-made desk behind
        shutil.rmtree(folder, ignore_errors=True)
        raise
    _remember_demo_desk(folder)
    return folder


def _seed_demo_desk(folder: Path, base) -> None:
    import asyncio

    from rflow_tui.services import demo

    url = f"sqlite+aiosqlite:///{folder / DEMO_DB}"

    async def seed() -> None:
        from rflow_tui.db import open_store

        engine, open_db = await open_store(url)
        async with open_db() as db:
            await demo.seed_demo(db)
        await engine.dispose()

    asyncio.run(seed())
    # the recording carries the judge's verdicts too; its latency is replayed, so the demo streams like a live desk
    llm = {"generator": "fixture", "judge": "fixture", "replay_latency": True}
    if base and base.llm.fixture:
        llm["fixture"] = base.llm.fixture
    lines = [
        "# A demo desk: its database and the recorded AI (no network, no API key)",
        f"database_url = {json.dumps(url)}",
        "",
        "[llm]",
    ]
    lines += [f"{key} = {json.dumps(value)}" for key, value in llm.items()]
    (folder / DEMO_CONFIG).write_text("\n".join(lines) + "\n", encoding="utf-8")


def command_path() -> str:
    """How to run this rflow again from any shell: the full path, not a bare name that may not be on PATH."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    if not argv0 or argv0.endswith("__main__.py") or argv0 == "-c":
        return f"{shlex.quote(sys.executable)} -m rflow_tui"
    found = argv0 if os.sep in argv0 else shutil.which(argv0)
    if found is None:  # run by a name this shell cannot find again: the interpreter knows the way
        return f"{shlex.quote(sys.executable)} -m rflow_tui"
    return shlex.quote(str(Path(found).absolute()))
