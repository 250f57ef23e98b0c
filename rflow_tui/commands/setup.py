"""Set-up commands a desk runs once: init, users, tickets, config-path."""

from __future__ import annotations

import argparse
from pathlib import Path

from rflow_tui.commands.common import CommandError, acting_user, load, run_async, store, whole_number
from rflow_tui.commands.output import say
from rflow_tui.commands.tickets import cmd_tickets_list
from rflow_tui.domain.enums import Role, TicketKind


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("init", help="create the database, a first account and its owner")
    p.add_argument("--account", required=True, help="the desk's name, e.g. 'Contoso IT'")
    p.add_argument("--email", required=True, help="the owner's email")
    p.add_argument("--name", default="", help="the owner's name")
    p.add_argument("--no-starter-flows", action="store_true", help="do not install the shipped starter flows")
    p.add_argument(
        "--add-account", action="store_true", help="add another account to a database that already holds a desk"
    )
    add_binding_options(p)
    p.set_defaults(handler=cmd_init)

    sub.add_parser("config-path", help="print where the config file is read from").set_defaults(handler=cmd_config_path)

    users = sub.add_parser("users", help="manage the desk's users").add_subparsers(dest="users_cmd", required=True)
    p = users.add_parser("add", help="add a user to the acting user's account")
    p.add_argument("email")
    p.add_argument("--name", default="")
    p.add_argument("--role", default=Role.L1_TECH.value, choices=[role.value for role in Role])
    p.add_argument("--coverage", action="store_true", help="an engineer who may also walk tickets (L1 coverage)")
    add_binding_options(p)
    p.set_defaults(handler=cmd_users_add)

    p = users.add_parser("bind", help="bind a user to the database role or OS login they use")
    p.add_argument("email")
    add_binding_options(p)
    p.set_defaults(handler=cmd_users_bind, clear=False)
    p = users.add_parser("unbind", help="remove a user's database role and OS login bindings")
    p.add_argument("email")
    p.set_defaults(handler=cmd_users_bind, clear=True, db_role=None, os_login=None)

    users.add_parser("list", help="list the account's users").set_defaults(handler=cmd_users_list)
    p = users.add_parser("set-coverage", help="let an engineer walk tickets (on) or not (off)")
    p.add_argument("email")
    p.add_argument("state", choices=("on", "off"))
    p.set_defaults(handler=cmd_users_update, field="coverage")
    p = users.add_parser("set-role", help="change a user's role (only owners make or unmake owners)")
    p.add_argument("email")
    p.add_argument("role", choices=("owner", "admin", "engineer", "l1_tech"))
    p.set_defaults(handler=cmd_users_update, field="role")
    for verb, state in (("deactivate", "off"), ("reactivate", "on")):
        p = users.add_parser(verb, help=f"{verb} a user")
        p.add_argument("email")
        p.set_defaults(handler=cmd_users_update, field="active", state=state)

    tickets = sub.add_parser("tickets", help="add or import tickets").add_subparsers(dest="tickets_cmd", required=True)
    p = tickets.add_parser("add", help="add one ticket")
    p.add_argument("ticket_id")
    p.add_argument("--subject", required=True)
    p.add_argument("--body", default="")
    p.add_argument("--requester", default="")
    p.add_argument("--category", default="")
    p.add_argument(
        "--psa", metavar="SYSTEM", help="a PSA ticket (connectwise, autotask, halopsa, ...) referenced by id"
    )
    p.set_defaults(handler=cmd_tickets_add)
    p = tickets.add_parser(
        "import",
        help="import tickets from CSV or JSON (all rows or none)",
        description=TICKET_FORMATS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", type=Path, help="a .csv or .json file")
    p.add_argument(
        "--skip-existing",
        action="store_true",
        help="leave tickets already on the desk alone (an export overlapping the last one); "
        "the rest is still all or nothing",
    )
    p.set_defaults(handler=cmd_tickets_import)
    p = tickets.add_parser("reopen", help="reopen a resolved or escalated ticket so it can be walked again")
    p.add_argument("ticket_id")
    p.set_defaults(handler=cmd_tickets_reopen)
    p = tickets.add_parser("list", help="the open queue, with each ticket's source (internal or its PSA)")
    p.add_argument("--json", action="store_true", help="as JSON")
    p.add_argument("--search", metavar="TEXT", help="only tickets whose id, subject, requester or category has it")
    p.add_argument("--sort", choices=("age", "newest", "id", "subject", "requester", "status"), default="age")
    p.add_argument("--limit", type=whole_number, default=200, help="at most this many (200)")
    p.set_defaults(handler=cmd_tickets_list)


def add_binding_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db-role",
        metavar="NAME",
        help="PostgreSQL: the database role this person connects as (default: from the email); "
        "created with least privilege, or the SQL for a DBA is printed",
    )
    p.add_argument(
        "--os-login",
        metavar="NAME",
        help="SQLite: the OS login this person uses; --user may then name them only from it",
    )


async def bind_database_role(db, settings, actor, user, requested: str | None) -> None:
    """PostgreSQL: give ``user`` their own login role (or the SQL for a DBA) and say how they
    connect. ``requested`` None: the role they are bound to, else one named from their email."""
    from rflow_tui.services.identity import default_db_role, is_postgres, provision_role
    from rflow_tui.services.users import bind_user

    if not is_postgres(db):
        return
    role = requested or user.db_role or default_db_role(user.email)
    if user.db_role != role:
        user = await bind_user(db, actor=actor, email=user.email, db_role=role)
    email, who = user.email, user.name or user.email  # read before provisioning may roll back the session
    outcome = await provision_role(db, actor=actor, role=role)
    if outcome.existed:
        say(f"bound {email} to the existing database role {role}")
    elif outcome.created:
        say(f"created database role {role} for {email}")
    if outcome.sql_for_dba:
        say(
            "the connected role may not create database roles; a DBA runs, in this database, as a superuser "
            "(or the role that owns rflow's tables, with CREATEROLE):"
        )
        say("    " + outcome.sql_for_dba.replace("\n", "\n    "))
    if outcome.password:
        say(f"{who}'s password (shown once; the server keeps only a hash): {outcome.password}")
        say(f'{who} puts this in their config file: database_url = "{person_url(settings, role, outcome.password)}"')


def person_url(settings, role: str, password: str) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(settings.resolved_database_url).set(drivername="postgresql", username=role, password=password)
    return url.render_as_string(hide_password=False)


def cmd_config_path(args) -> int:
    from rflow_tui.config import config_file_path

    say(config_file_path(args.config))
    return 0


def cmd_init(args) -> int:
    settings = load(args, allow_missing=True)

    async def go() -> int:
        from rflow_tui.commands.refusals import refuse_unless_dba
        from rflow_tui.config import safe_url
        from rflow_tui.services.library import install_starter_library
        from rflow_tui.services.users import account_count, bind_user, create_account

        what = "`rflow init` (setting up a new account)"
        async with store(settings, what) as db:
            await refuse_unless_dba(db, what)
            if not args.add_account and (accounts := await account_count(db)):
                raise CommandError(
                    f"a desk already exists in {safe_url(settings.resolved_database_url)} "
                    f"({accounts} account{'s' if accounts > 1 else ''}). Open it with `rflow`, add people with "
                    "`rflow users add`; for a new desk pass --db with another path, or --add-account to add "
                    "another account to this database"
                )
            owner = await create_account(db, name=args.account, owner_email=args.email, owner_name=args.name)
            flows = [] if args.no_starter_flows else await install_starter_library(db, actor=owner)
            say(f"created account '{args.account}' with owner {owner.email} and {len(flows)} starter flows")
            say(f"database: {safe_url(settings.resolved_database_url)}")
            if args.os_login is not None or args.db_role is not None:
                owner = await bind_user(
                    db, actor=owner, email=owner.email, db_role=args.db_role, os_login=args.os_login
                )
            await bind_database_role(db, settings, owner, owner, None)
        write_first_config(settings, owner.email)
        return 0

    return run_async(go)


def write_first_config(settings, email: str) -> None:
    """The config ``init`` leaves behind: who the app opens as and, if one was named
    (``--db``, RFLOW_DATABASE_URL), the database, so the next command finds the same desk.
    Readable by its owner only: a database URL may carry a password (never printed)."""
    import json
    import os

    from rflow_tui.config import safe_url

    keys = {"database_url": settings.database_url, "user": email} if settings.database_url else {"user": email}
    path = settings.config_path
    if path is None or path.exists():
        wanted = "; ".join(f"{key} = {json.dumps(safe_url(value))}" for key, value in keys.items())
        say(f"{path} exists and was left as it is; to use this desk from it, set: {wanted}")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as out:
        out.writelines(f"{key} = {json.dumps(value)}\n" for key, value in keys.items())
    where = f" on {safe_url(settings.database_url)}" if settings.database_url else ""
    say(f"wrote {path} (the app opens as {email}{where})")


def cmd_users_add(args) -> int:
    settings = load(args)

    async def go() -> int:
        from rflow_tui.services.users import add_user

        async with store(settings) as db:
            actor = await acting_user(db, settings)
            user = await add_user(
                db,
                actor=actor,
                email=args.email,
                name=args.name,
                role=args.role,
                coverage=args.coverage,
                db_role=args.db_role,
                os_login=args.os_login,
            )
            say(f"added {user.email} ({user.account_role}{', L1 coverage' if user.coverage else ''})")
            await bind_database_role(db, settings, actor, user, None)
        return 0

    return run_async(go)


def cmd_users_bind(args) -> int:
    settings = load(args)

    async def go() -> int:
        from rflow_tui.services.users import bind_user

        async with store(settings) as db:
            actor = await acting_user(db, settings)
            user = await bind_user(
                db, actor=actor, email=args.email, db_role=args.db_role, os_login=args.os_login, clear=args.clear
            )
            if args.clear:
                say(f"{user.email}: no database role or OS login bound")
                return 0
            if user.os_login:
                say(f"{user.email}: bound to the OS login {user.os_login}")
            if user.db_role:
                await bind_database_role(db, settings, actor, user, user.db_role)
        return 0

    return run_async(go)


def cmd_users_list(args) -> int:
    settings = load(args)

    async def go() -> int:
        from rflow_tui.services.identity import role_problems
        from rflow_tui.services.users import list_users

        async with store(settings) as db:
            actor = await acting_user(db, settings)
            users = await list_users(db, actor=actor)
            problems = await role_problems(db, actor=actor, users=users)
            for u in users:
                flags = [
                    f
                    for f, on in (("coverage", u.coverage), ("inactive", not u.is_active), ("deleted", u.deleted_at))
                    if on
                ]
                flags += [f"{kind}:{name}" for kind, name in (("db-role", u.db_role), ("os-login", u.os_login)) if name]
                if u.id in problems:
                    flags.append("cannot-log-in")
                say(f"{u.email:40} {u.account_role:9} {u.name:24} {' '.join(flags)}".rstrip())
                if u.id in problems:
                    say(f"    ! {problems[u.id]}")
        return 0

    return run_async(go)


def cmd_users_update(args) -> int:
    settings = load(args)

    async def go() -> int:
        from rflow_tui.services.users import update_user

        async with store(settings) as db:
            actor = await acting_user(db, settings)
            value = args.role if args.field == "role" else args.state == "on"
            user = await update_user(db, actor=actor, email=args.email, **{args.field: value})
        say(f"{user.email}: {args.field} {args.role if args.field == 'role' else args.state}")
        return 0

    return run_async(go)


def cmd_tickets_add(args) -> int:
    settings = load(args)

    async def go() -> int:
        from rflow_tui.services.tickets import add_ticket

        async with store(settings) as db:
            actor = await acting_user(db, settings)
            ticket = await add_ticket(
                db,
                actor=actor,
                ticket_id=args.ticket_id,
                subject=args.subject,
                body=args.body,
                requester=args.requester,
                category=args.category,
                ticket_kind=TicketKind.PSA if args.psa else TicketKind.INTERNAL,
                psa_system=args.psa,
            )
        say(f"added ticket {ticket.ticket_id}")
        return 0

    return run_async(go)


TICKET_FORMATS = """\
Import tickets from a CSV or JSON file: every row is checked first, and any
problem imports nothing (each problem names the file's line).

Columns (CSV header row, or JSON object keys):
  ticket_id    required, at most 64 characters, unique on the desk
  subject      required, at most 500 characters
  body         the description (may span lines)
  requester    who asked
  category     e.g. email, printing, network
  ticket_kind  internal (default) or psa
  psa_system   required for psa tickets (connectwise, autotask, halopsa, ...)
  created_at   optional, ISO 8601 (2026-11-24T09:30:00Z; no offset means UTC),
               so an imported backlog keeps its ages
  status       accepted and ignored: imported tickets are new

CSV:   ticket_id,subject,requester,created_at
       T-1042,Outlook will not open,Bob Baker,2026-11-24T09:30:00Z
JSON:  [{"ticket_id": "T-1042", "subject": "Outlook will not open", "requester": "Bob Baker"}]
"""


def cmd_tickets_reopen(args) -> int:
    settings = load(args)

    async def go() -> int:
        from rflow_tui.services.tickets import reopen_ticket

        async with store(settings) as db:
            actor = await acting_user(db, settings)
            ticket = await reopen_ticket(db, actor=actor, ticket_id=args.ticket_id)
        print(f"reopened ticket {ticket.ticket_id}")
        return 0

    return run_async(go)


def cmd_tickets_import(args) -> int:
    settings = load(args)

    async def go() -> int:
        from rflow_tui.services.tickets import import_tickets, read_ticket_file

        rows = read_ticket_file(args.file)
        async with store(settings) as db:
            actor = await acting_user(db, settings)
            report = await import_tickets(
                db, actor=actor, rows=rows, source=str(args.file), skip_existing=args.skip_existing
            )
        if report.errors:
            for line in report.errors:
                say(line, err=True)
            raise CommandError(f"{len(report.errors)} problem(s) in {args.file}; nothing was imported")
        skipped = f", skipped {report.skipped} already on the desk" if report.skipped else ""
        say(f"imported {report.imported} ticket(s) from {args.file}{skipped}")
        return 0

    return run_async(go)
