"""`rflow psa`: deliver what walks owe their PSA tickets, and see the outbox."""

from __future__ import annotations

import argparse
import json

from rflow_tui.commands.common import CommandError, acting_user, load, run_async, store, whole_number
from rflow_tui.commands.output import emit, say


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


def cmd_psa_push(args) -> int:
    settings = load(args)

    async def go() -> int:
        from rflow_tui.psa.base import PsaError
        from rflow_tui.psa.registry import NoPsaConfigured, make_adapter
        from rflow_tui.services.psa_outbox import deliver_due

        try:
            adapter = make_adapter(settings.psa)
        except (PsaError, NoPsaConfigured) as exc:
            raise CommandError(str(exc)) from exc
        statuses = {"resolved": settings.psa.resolved_status, "escalated": settings.psa.escalated_status}
        try:
            async with store(settings) as db:
                actor = await acting_user(db, settings)
                privacy = settings.privacy.policy()
                drained = await deliver_due(db, actor=actor, adapter=adapter, statuses=statuses, privacy=privacy)
        finally:
            await adapter.aclose()
        say(f"delivered {drained.delivered}, failed {drained.failed}, waiting to retry {drained.waiting}")
        return 1 if drained.failed else 0

    return run_async(go)


def cmd_psa_status(args) -> int:
    settings = load(args)

    async def go() -> int:
        from rflow_tui.services.psa_outbox import as_row, outbox

        async with store(settings) as db:
            items = await outbox(db, actor=await acting_user(db, settings))
        rows = [as_row(item) for item in items]
        if args.json:
            emit(json.dumps(rows, indent=2))
            return 0
        if not rows:
            say("the PSA outbox is empty: no walk on a PSA ticket has ended yet")
        for row in rows:
            when = f" next try {row['next_attempt_at']}" if row["next_attempt_at"] else ""
            error = f" · {row['last_error']}" if row["last_error"] else ""
            say(
                f"#{row['id']:<5} {row['state']:<9} {row['psa']} ticket {row['ticket']} ({row['outcome']}) "
                f"tries {row['attempts']}{when}{error}"
            )
        return 0

    return run_async(go)


def cmd_psa_retry(args) -> int:
    settings = load(args)

    async def go() -> int:
        from rflow_tui.services.psa_outbox import retry

        async with store(settings) as db:
            item = await retry(db, actor=await acting_user(db, settings), item_id=args.item_id)
        say(f"outbox item #{item.id} (ticket {item.ticket_id}) is queued again: rflow psa push delivers it")
        return 0

    return run_async(go)
