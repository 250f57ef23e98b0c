"""`rflow psa`: deliver what walks owe their PSA tickets, see the outbox, pull the board's tickets."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rflow_tui.commands.common import (
    CommandError,
    acting_user,
    load,
    run_async,
    run_watching,
    sessions,
    store,
    whole_number,
)
from rflow_tui.commands.output import emit, say

WATCH_BOUNDS = (5, 3600)


def poll_seconds(value: str) -> int:
    """An argparse type: the gap between polls, in whole seconds within WATCH_BOUNDS."""
    low, high = WATCH_BOUNDS
    if not value.isdigit() or not low <= int(value) <= high:
        raise argparse.ArgumentTypeError(f"expected whole seconds from {low} to {high}, not '{value[:40]}'")
    return int(value)


def register(sub: argparse._SubParsersAction) -> None:
    psa = sub.add_parser("psa", help="the ticket system (PSA): deliver notes and statuses, see the outbox")
    cmds = psa.add_subparsers(dest="psa_cmd", required=True)
    cmds.add_parser(
        "push", help="deliver every note and status that is due to the configured PSA, once each"
    ).set_defaults(handler=cmd_psa_push)
    p = cmds.add_parser("status", help="the outbox: pending, delivered and failed items with the last error")
    p.add_argument("--json", action="store_true", help="as JSON")
    p.set_defaults(handler=cmd_psa_status)
    p = cmds.add_parser("retry", help="queue a failed item again (after fixing the keys or the ticket)")
    p.add_argument("item_id", type=whole_number, metavar="ID")
    p.set_defaults(handler=cmd_psa_retry)
    p = cmds.add_parser(
        "pull", help="bring the configured board's open tickets into the desk (new, updated, skipped, closed)"
    )
    p.add_argument("--json", action="store_true", help="the counts as JSON")
    p.add_argument("--watch", action="store_true", help="keep pulling what changed until Ctrl+C")
    p.add_argument(
        "--every", type=poll_seconds, default=60, metavar="SECONDS", help="with --watch: seconds between polls (60)"
    )
    p.set_defaults(handler=cmd_psa_pull)


def _adapter(settings) -> Any:
    """The configured adapter, or a one-line refusal (no [psa], an unknown kind, a key not set)."""
    from rflow_tui.psa.base import PsaError
    from rflow_tui.psa.registry import NoPsaConfigured, make_adapter

    try:
        return make_adapter(settings.psa)
    except (PsaError, NoPsaConfigured) as exc:
        raise CommandError(str(exc)) from exc


def cmd_psa_push(args) -> int:
    settings = load(args)

    async def go() -> int:
        from rflow_tui.services.psa_delivery import drain_as_configured

        adapter = _adapter(settings)
        try:
            async with sessions(settings, "deliver notes to the PSA") as open_db:
                async with open_db() as db:
                    actor = await acting_user(db, settings)
                drained = await drain_as_configured(open_db, actor=actor, adapter=adapter, settings=settings)
        finally:
            await adapter.aclose()
        say(f"delivered {drained.delivered}, failed {drained.failed}, waiting to retry {drained.waiting}")
        return 1 if drained.failed else 0

    return run_async(go)


def cmd_psa_status(args) -> int:
    from rflow_tui.commands.outbox import show_status
    from rflow_tui.services.psa_outbox import as_row, outbox

    return show_status(
        args,
        listing=outbox,
        as_row=as_row,
        what=lambda row: f"{row['psa']} ticket {row['ticket']} ({row['outcome']})",
        empty="the PSA outbox is empty: no walk on a PSA ticket has ended yet",
    )


def cmd_psa_retry(args) -> int:
    from rflow_tui.commands.outbox import requeue
    from rflow_tui.services.psa_outbox import retry

    return requeue(
        args,
        retry=retry,
        said=lambda item: (
            f"outbox item #{item.id} (ticket {item.ticket_id}) is queued again: rflow psa push delivers it"
        ),
    )


def cmd_psa_pull(args) -> int:
    settings = load(args)

    async def go() -> int:
        from rflow_tui.psa.base import PsaError
        from rflow_tui.services import psa_pull

        adapter = _adapter(settings)
        try:
            async with store(settings, "pull tickets from the PSA") as db:
                actor = await acting_user(db, settings)
                if args.watch:
                    say(f"watching {adapter.name} every {args.every} s; Ctrl+C stops")
                    await psa_pull.watch(db, actor=actor, adapter=adapter, every=args.every, say=say)
                    return 0
                with _progress(enabled=not args.json) as progress:
                    report = await psa_pull.pull(db, actor=actor, adapter=adapter, progress=progress)
        except PsaError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            await adapter.aclose()
        if args.json:
            emit(json.dumps(report.as_row(), indent=2))
        else:
            say(psa_pull.summary(report))
        return 0

    return run_watching(args, go)


class _progress:
    """A Rich progress line while a pull runs in a terminal (on standard error); nothing otherwise."""

    def __init__(self, *, enabled: bool) -> None:
        self.bar: Any = None
        if enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self.bar = Progress(
                SpinnerColumn(),
                TextColumn("pulling tickets: {task.completed} read"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.task = self.bar.add_task("pull", total=None)

    def __enter__(self):
        if self.bar is None:
            return None
        self.bar.start()
        return lambda read: self.bar.update(self.task, completed=read)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
