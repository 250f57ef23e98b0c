"""What `rflow psa` and `rflow alerts` share: listing an outbox and re-queueing a failed item."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from rflow_tui.commands.common import acting_user, load, run_async, store
from rflow_tui.commands.output import emit, say


def show_status(
    args, *, listing: Callable[..., Any], as_row: Callable[[Any], dict], what: Callable[[dict], str], empty: str
) -> int:
    """The outbox newest first (``--json``: as ``as_row`` makes it), one line an item:
    its id, state, ``what(row)``, tries, the next try and the last error."""
    settings = load(args)

    async def go() -> int:
        async with store(settings) as db:
            items = await listing(db, actor=await acting_user(db, settings))
        rows = [as_row(item) for item in items]
        if args.json:
            emit(json.dumps(rows, indent=2))
            return 0
        if not rows:
            say(empty)
        for row in rows:
            when = f" next try {row['next_attempt_at']}" if row["next_attempt_at"] else ""
            error = f" · {row['last_error']}" if row["last_error"] else ""
            say(f"#{row['id']:<5} {row['state']:<9} {what(row)} tries {row['attempts']}{when}{error}")
        return 0

    return run_async(go)


def requeue(args, *, retry: Callable[..., Any], said: Callable[[Any], str]) -> int:
    """Queue the failed item ``args.item_id`` again; ``said(item)`` is the line that says so."""
    settings = load(args)

    async def go() -> int:
        async with store(settings) as db:
            item = await retry(db, actor=await acting_user(db, settings), item_id=args.item_id)
        say(said(item))
        return 0

    return run_async(go)
