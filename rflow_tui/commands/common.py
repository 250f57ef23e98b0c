"""What every subcommand shares: the refusal type, settings, a store session, the acting user."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any


class CommandError(Exception):
    """A refusal printed as ``rflow: <message>`` with exit status 2."""


def load(args: argparse.Namespace, allow_missing: bool = False):
    from rflow_tui.config import load_settings

    return load_settings(args.config, database_url=args.db, user=args.user, allow_missing=allow_missing)


@asynccontextmanager
async def store(settings, what: str = "this") -> AsyncIterator[Any]:
    """A store session on the configured database, disposed afterwards.

    Every transaction in it takes the write lock first, as the app's writes do, so a
    set-up command run while techs work waits for the lock instead of failing. What the
    server refuses this role (``what``: the command, in words) is said, with who may do it.
    """
    async with sessions(settings, what) as open_db, open_db() as db:
        yield db


@asynccontextmanager
async def sessions(settings, what: str = "this") -> AsyncIterator[Any]:
    """Like ``store``, but the session factory, for a command that works on several at once."""
    from sqlalchemy.exc import DBAPIError

    from rflow_tui.commands.refusals import refused_by_server
    from rflow_tui.db import lock_first_session_factory, open_store

    engine, _ = await open_store(settings.resolved_database_url)
    try:
        yield lock_first_session_factory(engine)
    except DBAPIError as exc:
        message = await refused_by_server(engine, exc, what)
        if message is None:
            raise
        raise CommandError(message) from exc
    finally:
        await engine.dispose()


async def acting_user(db, settings):
    from rflow_tui.services.users import find_login

    return await find_login(db, settings.user)


def run_async(fn: Callable[[], Coroutine[Any, Any, int | None]]) -> int:
    return asyncio.run(fn()) or 0


def run_watching(args: argparse.Namespace, fn: Callable[[], Coroutine[Any, Any, int | None]]) -> int:
    """``run_async``, where Ctrl+C ends a ``--watch`` quietly (and anything else as usual)."""
    from rflow_tui.commands.output import say

    try:
        return run_async(fn)
    except KeyboardInterrupt:
        if not args.watch:
            raise
        say("stopped watching")
        return 0


LARGEST_NUMBER = 2**31 - 1  # the largest id or count every store takes (PostgreSQL's integer)


def whole_number(value: str) -> int:
    """An argparse type: a count or an id, from 0 to ``LARGEST_NUMBER``, said in words when not."""
    import argparse

    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number, not '{value[:40]}'")
    number = int(value)
    if number > LARGEST_NUMBER:
        raise argparse.ArgumentTypeError(f"{value[:40]} is too large (at most {LARGEST_NUMBER:,})")
    return number
