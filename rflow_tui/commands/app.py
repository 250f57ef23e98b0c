"""Commands that open the terminal app: the default run, ``demo`` and ``escalations``."""

from __future__ import annotations

import argparse
from dataclasses import replace

from rflow_tui.cli import load
from rflow_tui.commands.output import say


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="open the app on a fresh demo desk (no network, no API key)")
    p.add_argument("--as", dest="role", choices=("tech", "engineer", "owner"), default="tech",
                   help="who to be: the L1 tech (default), an engineer with coverage, or the owner")
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
    import asyncio
    import tempfile
    from pathlib import Path

    from rflow_tui.config import LLMSettings, load_settings
    from rflow_tui.services import demo

    base = load_settings(args.config, user=None, allow_missing=True) if args.config else None
    folder = Path(tempfile.mkdtemp(prefix="rflow-demo-"))
    url = f"sqlite+aiosqlite:///{folder / 'demo.sqlite3'}"
    email = {"tech": demo.TECH_EMAIL, "engineer": demo.ENGINEER_EMAIL, "owner": demo.OWNER_EMAIL}[args.role]
    llm = replace(base.llm if base else LLMSettings(), generator="fixture", judge="fixture")  # the recording carries verdicts
    from rflow_tui.config import Settings

    settings = replace(base or Settings(), database_url=url, user=email, llm=llm)

    async def seed() -> None:
        from rflow_tui.db import open_store

        engine, open_db = await open_store(url)
        async with open_db() as db:
            await demo.seed_demo(db)
        await engine.dispose()

    asyncio.run(seed())
    code = _run(settings)
    say(f"demo desk kept at {folder} (open it again with: rflow --db {folder / 'demo.sqlite3'} --user {email})")
    return code
