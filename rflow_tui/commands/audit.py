"""``rflow audit list | tail | verify``: the desk's audit log, read and checked (owners and admins).

One entry per line, plain text: ``#seq  time  who  action  target  key=value ...``.
Names, ids and details are stored text, so every line goes through the output guard.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from rflow_tui.commands.common import acting_user, load, run_async, store, whole_number
from rflow_tui.commands.output import say
from rflow_tui.text import clean

BARE = re.compile(r"[\w.:@/+-]+")


def register(sub: argparse._SubParsersAction) -> None:
    audit = sub.add_parser("audit", help="the desk's audit log: list, follow, verify (owners and admins)")
    cmds = audit.add_subparsers(dest="audit_cmd", required=True)
    p = cmds.add_parser("list", help="the newest entries, oldest first")
    p.add_argument("-n", "--last", type=whole_number, default=50, metavar="N", help="how many (default 50; 0: all)")
    p.set_defaults(handler=cmd_audit_list)
    p = cmds.add_parser("tail", help="the newest entries, then each new one as it is written (Ctrl+C stops)")
    p.add_argument(
        "-n", "--last", type=whole_number, default=10, metavar="N", help="how many to show first (default 10)"
    )
    p.add_argument("--interval", type=_interval, default=1.0, metavar="SECONDS", help="how often to look (default 1)")
    p.set_defaults(handler=cmd_audit_tail)
    p = cmds.add_parser("verify", help="check the hash chain; exit status 1 naming the first broken row")
    p.add_argument(
        "--expect",
        type=_head,
        metavar="SEQ:HASH",
        help="a head printed by an earlier verify: also prove nothing up to it was rewritten",
    )
    p.set_defaults(handler=cmd_audit_verify)


def _interval(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, not '{value}'") from None
    if not 0.1 <= seconds <= 3600:  # also refuses nan and inf
        raise argparse.ArgumentTypeError("the interval must be between 0.1 and 3600 seconds")
    return seconds


def _head(value: str) -> tuple[int, str]:
    seq, _, digest = value.partition(":")
    if not seq.lstrip("#").isdigit() or not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise argparse.ArgumentTypeError(f"expected SEQ:HASH as verify prints it, not '{value}'")
    return int(seq.lstrip("#")), digest


def _value(value: Any) -> str:
    if isinstance(value, str) and BARE.fullmatch(value):
        return value
    return json.dumps(value, ensure_ascii=False)


def audit_line(entry: Any, names: dict[int, str]) -> str:
    who = names.get(entry.actor_user_id, f"user {entry.actor_user_id}") if entry.actor_user_id else "-"
    target = f"{entry.target_type}:{entry.target_id}" if entry.target_id is not None else entry.target_type
    details = " ".join(
        f"{key}={_value(value)}" for key, value in sorted((entry.details or {}).items()) if value is not None
    )
    when = entry.created_at.strftime("%Y-%m-%d %H:%M:%SZ")
    fields = (clean(field, single_line=True) for field in (who, entry.action, target, details))
    return f"#{entry.seq:<5} {when}  " + "  ".join(fields).rstrip()


async def _names(db, actor) -> dict[int, str]:
    from rflow_tui.models import row_id
    from rflow_tui.services.users import list_users

    return {row_id(user): user.email for user in await list_users(db, actor=actor)}


def cmd_audit_list(args) -> int:
    settings = load(args)

    async def go() -> int:
        from rflow_tui.services.audit import entries

        async with store(settings) as db:
            actor = await acting_user(db, settings)
            names = await _names(db, actor)
            if args.last:
                rows = await entries(db, actor=actor, last=args.last)
                for row in rows:
                    say(audit_line(row, names))
                if not rows:
                    say("the audit log is empty")
                return 0
            after, shown = 0, 0
            while rows := await entries(db, actor=actor, after_seq=after):
                for row in rows:
                    say(audit_line(row, names))
                after, shown = rows[-1].seq, shown + len(rows)
            if not shown:
                say("the audit log is empty")
        return 0

    return run_async(go)


def cmd_audit_tail(args) -> int:
    """Follow the log. A database that goes away is waited for, not a reason to stop."""
    settings = load(args)

    async def go() -> int:
        import asyncio

        from rflow_tui.db import open_store, store_errors
        from rflow_tui.services.audit import entries
        from rflow_tui.services.errors import DatabaseError

        engine, open_db = await open_store(settings.resolved_database_url)
        try:
            async with open_db() as db:
                actor = await acting_user(db, settings)
                names = await _names(db, actor)
                rows = await entries(db, actor=actor, last=args.last) if args.last else []
                after = rows[-1].seq if rows else await _newest_seq(db, actor)
            _show(rows, names)
            waiting = False
            while True:
                await asyncio.sleep(args.interval)
                try:
                    async with store_errors(), open_db() as db:
                        rows = await entries(db, actor=actor, after_seq=after)
                        if any(row.actor_user_id not in names for row in rows):
                            names = await _names(db, actor)
                except DatabaseError as exc:
                    if not waiting:
                        say(f"rflow: {exc} (still following)", err=True)
                    waiting = True
                    continue
                if waiting:
                    say("rflow: reconnected", err=True)
                    waiting = False
                _show(rows, names)
                after = rows[-1].seq if rows else after
        finally:
            await engine.dispose()

    try:
        return run_async(go)
    except KeyboardInterrupt:  # Ctrl+C is how a tail ends
        return 0


async def _newest_seq(db, actor) -> int:
    from rflow_tui.services.audit import entries

    newest = await entries(db, actor=actor, last=1)
    return newest[-1].seq if newest else 0


def _show(rows: list, names: dict[int, str]) -> None:
    for row in rows:
        say(audit_line(row, names))
    sys.stdout.flush()  # a follower reads each line as it comes


def cmd_audit_verify(args) -> int:
    settings = load(args)

    async def go() -> int:
        from rflow_tui.services.audit import verify

        async with store(settings) as db:
            actor = await acting_user(db, settings)
            verdict = await verify(db, actor=actor, expect=args.expect)
        if not verdict.intact:
            say(f"rflow: audit log broken: {verdict.problem}", err=True)
            say(f"{verdict.rows} row(s) read", err=True)
            return 1
        say(f"audit log intact: {verdict.rows} row(s); head {verdict.head_seq}:{verdict.head_hash}")
        say(
            "Keep the head somewhere else: `rflow audit verify --expect` with it proves later "
            "that nothing up to it was rewritten."
        )
        return 0

    return run_async(go)
