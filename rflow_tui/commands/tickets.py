"""`rflow tickets list`: the desk's open queue, with where each ticket comes from."""

from __future__ import annotations

import json
from typing import Any

from rflow_tui.commands.common import acting_user, load, run_async, store
from rflow_tui.commands.output import emit, say


def ticket_row(ticket: Any) -> dict[str, Any]:
    return {
        "ticket_id": ticket.ticket_id,
        "source": ticket.psa_system or "internal",  # a PSA ticket always names its system
        "status": ticket.status,
        "priority": ticket.priority,
        "requester": ticket.requester,
        "subject": ticket.subject,
        "created_at": ticket.created_at.isoformat(),
        "link": ticket.psa_url,
    }


def cmd_tickets_list(args) -> int:
    settings = load(args)

    async def go() -> int:
        from rflow_tui.services.tickets import count_open_tickets, list_open_tickets

        async with store(settings) as db:
            actor = await acting_user(db, settings)
            rows = [
                ticket_row(t)
                for t in await list_open_tickets(db, actor=actor, search=args.search, sort=args.sort, limit=args.limit)
            ]
            total = await count_open_tickets(db, actor=actor, search=args.search)
        if args.json:
            emit(json.dumps(rows, indent=2))
            return 0
        if not rows:
            say("no open tickets" + (f" matching '{args.search}'" if args.search else ""))
        for row in rows:
            say(
                f"{row['ticket_id']:<12} {row['source']:<12} {row['status']:<11} {row['priority'][:22]:<22} "
                f"{row['requester'][:20]:<20} {row['subject'][:70]}".rstrip()
            )
        if total > len(rows):
            say(f"… {total - len(rows)} more (--limit)")
        return 0

    return run_async(go)
