"""Who is who: a person's database role, or their OS login, decides whom they may act as.

PostgreSQL tests connect as a person's own role, the way a desk does, and try to cross
the rules with the app and with raw SQL. SQLite tests bind users to OS logins.
"""

from __future__ import annotations

import asyncio
import re
import uuid

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlmodel import select

from rflow_tui.cli import main
from rflow_tui.config import Settings, normalize_database_url
from rflow_tui.migrations.rls import PEOPLE_ROLE
from rflow_tui.models import FlowProposal, Ticket, User
from rflow_tui.services import identity
from rflow_tui.services.app_context import open_context
from rflow_tui.services.demo import ENGINEER_EMAIL, OWNER_EMAIL, TECH_EMAIL, seed_demo
from rflow_tui.services.errors import AccessDenied, DatabaseError, ValidationFailed
from rflow_tui.services.identity import provision_role
from rflow_tui.services.library import import_flow_doc
from rflow_tui.services.users import bind_user, find_login
from rflow_tui.services.walks import endings as walk_endings
from rflow_tui.services.walks import start as walk_start
from tests.conftest import make_desk
from tests.tui_support import SMALL_FLOW

postgres = pytest.mark.postgres_only
sqlite = pytest.mark.sqlite_only


async def rflow(*argv: str) -> int:
    """The CLI, as a desk runs it (it runs its own event loop, so on a thread of its own)."""
    return await asyncio.to_thread(main, list(argv))


@pytest.fixture
def no_config(tmp_path, monkeypatch):
    (tmp_path / "rflow.toml").write_text("")
    monkeypatch.setenv("RFLOW_CONFIG", str(tmp_path / "rflow.toml"))
    monkeypatch.delenv("RFLOW_USER", raising=False)


def settings(url: str, user: str | None = None) -> Settings:
    return Settings(database_url=normalize_database_url(url), user=user)


def as_role(db_url: str, role: str, password: str) -> str:
    """The same database, reached as ``role`` (a plain libpq-style URL, as a desk writes it)."""
    return (
        make_url(db_url)
        .set(drivername="postgresql", username=role, password=password)
        .render_as_string(hide_password=False)
    )


async def person(db, db_url: str, actor: User, user: User) -> str:
    """Bind ``user`` to a fresh role of their own, made by ``actor``; the URL they connect with."""
    role = f"p_{uuid.uuid4().hex[:10]}"
    await bind_user(db, actor=actor, email=user.email, db_role=role)
    outcome = await provision_role(db, actor=actor, role=role)
    assert outcome.created, outcome
    return as_role(db_url, role, outcome.password)


async def seed_every_table(db, desk) -> None:
    """At least one row of this desk in every account-scoped table."""
    await import_flow_doc(db, actor=desk.owner, doc=SMALL_FLOW, source="test")
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")
    await walk_endings.escalate(
        db, actor=desk.tech, session_id=walk.id, reason="disk clicking", reason_category="hardware"
    )
    db.add(FlowProposal(account_id=desk.owner.account_id, title="p", proposed_flow_data={}))
    await db.commit()


# --- PostgreSQL: the server keeps each role to its account --------------------------------


@postgres
async def test_every_account_scoped_table_has_row_level_security_and_no_delete(db_url, db, desk):
    conn = await asyncpg.connect(make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        tables = [
            r[0]
            for r in await conn.fetch(
                "SELECT table_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND column_name = 'account_id'"
            )
        ] + ["account"]
        assert {"ticket", "user", "l1_walk_session", "audit_log", "notification"} <= set(tables)
        for table in tables:
            secured = await conn.fetchval(
                "SELECT relrowsecurity FROM pg_class WHERE oid = to_regclass($1)", f'"{table}"'
            )
            policies = await conn.fetchval("SELECT count(*) FROM pg_policies WHERE tablename = $1", table)
            assert secured and policies >= 1, f"{table} has no row-level security"
            for privilege in ("DELETE", "TRUNCATE"):
                assert not await conn.fetchval(
                    "SELECT has_table_privilege($1, $2, $3)", PEOPLE_ROLE, f'"{table}"', privilege
                )
        assert not await conn.fetchval("SELECT has_table_privilege($1, 'audit_log', 'UPDATE')", PEOPLE_ROLE)
    finally:
        await conn.close()


@postgres
async def test_a_persons_role_cannot_read_or_write_another_account_even_with_raw_sql(db_url, db, desk):
    other = await make_desk(db, "Fabrikam", "fabrikam.test")
    await seed_every_table(db, desk)
    await seed_every_table(db, other)
    conn = await asyncpg.connect(await person(db, db_url, desk.owner, desk.tech))
    mine, theirs = desk.tech.account_id, other.tech.account_id
    try:
        tables = [
            r[0]
            for r in await conn.fetch(
                "SELECT table_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND column_name = 'account_id'"
            )
        ]
        seen = {}
        for table in tables:
            rows = await conn.fetch(f'SELECT DISTINCT account_id FROM "{table}"')
            seen[table] = {r[0] for r in rows}
        assert all(accounts <= {mine} for accounts in seen.values()), seen
        assert all(
            seen[t] == {mine}
            for t in ("user", "ticket", "flow", "flowproposal", "l1_walk_session", "notification", "audit_log")
        ), seen
        assert [r[0] for r in await conn.fetch("SELECT id FROM account")] == [mine]

        with pytest.raises(asyncpg.InsufficientPrivilegeError):  # row-level security refuses the row
            await conn.execute(
                "INSERT INTO ticket (account_id, ticket_id, ticket_kind, subject, body, requester, "
                "category, status, created_at, updated_at) VALUES ($1, 'X-1', 'internal', 'x', '', "
                "'', '', 'open', now(), now())",
                theirs,
            )
        assert await conn.execute("UPDATE ticket SET subject = 'pwned' WHERE account_id = $1", theirs) == "UPDATE 0"
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM ticket")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("UPDATE audit_log SET action = 'nothing happened'")
        # Within the account, an L1 tech still may not make themselves an owner.
        assert (
            await conn.execute("UPDATE \"user\" SET account_role = 'owner' WHERE id = $1", desk.tech.id) == "UPDATE 0"
        )
        assert await conn.fetchval('SELECT account_role FROM "user" WHERE id = $1', desk.tech.id) == "l1_tech"
    finally:
        await conn.close()
    subjects = set(await db.exec(select(Ticket.subject).where(Ticket.account_id == theirs)))
    assert subjects and "pwned" not in subjects


@postgres
async def test_user_naming_someone_else_is_refused_and_no_admin_is_added(db_url, db, desk, no_config, capsys):
    """The gap the issue measured: acting as another account's owner, a new admin was added."""
    other = await make_desk(db, "Fabrikam", "fabrikam.test")
    tech_url = await person(db, db_url, desk.owner, desk.tech)

    for victim in (other.owner.email, desk.owner.email):
        code = await rflow("--db", tech_url, "--user", victim, "users", "add", "mallory@evil.test", "--role", "admin")
        assert code == 2
        err = capsys.readouterr().err
        assert "names someone else" in err and "tech@contoso.test" in err
    assert (await db.exec(select(User).where(User.email == "mallory@evil.test"))).first() is None

    ctx = await open_context(settings(tech_url))  # no --user: the role says who
    assert ctx.user.email == desk.tech.email
    await ctx.engine.dispose()
    ctx = await open_context(settings(tech_url, "TECH@contoso.test"))
    assert ctx.user.id == desk.tech.id
    await ctx.engine.dispose()


@postgres
async def test_a_role_bound_to_nobody_is_refused_and_sees_nothing(db_url, db, pg_server, desk):
    role = f"p_{uuid.uuid4().hex[:10]}"
    pg_server.admin(f"CREATE ROLE {role} LOGIN PASSWORD 'pw' IN ROLE {PEOPLE_ROLE}")
    url = as_role(db_url, role, "pw")
    with pytest.raises(AccessDenied, match=f"database role '{role}' is not bound to an rflow user"):
        await open_context(settings(url, desk.owner.email))
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM ticket") == 0
        assert await conn.fetchval('SELECT count(*) FROM "user"') == 0
    finally:
        await conn.close()


@postgres
async def test_a_deactivated_persons_role_sees_nothing(db_url, db, desk):
    url = await person(db, db_url, desk.owner, desk.engineer)
    from rflow_tui.services.users import update_user

    await update_user(db, actor=desk.owner, email=desk.engineer.email, active=False)
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM ticket") == 0
    finally:
        await conn.close()


def printed_url(out: str) -> str:
    return re.search(r'database_url = "([^"]+)"', out).group(1)


@postgres
async def test_a_desk_set_up_step_by_step_as_the_readme_says(db_url, pg_server, no_config, capsys):
    """DBA inits as the schema owner; the owner, on their own role, adds people; a DBA runs
    the SQL the owner's role may not; each person then connects as themselves."""
    suffix = uuid.uuid4().hex[:6]
    owner_role, eng_role = f"olga_{suffix}", f"eddie_{suffix}"

    assert (
        await rflow(
            "--db", db_url, "init", "--account", "Contoso IT", "--email", "olga@contoso.test", "--db-role", owner_role
        )
        == 0
    )
    out = capsys.readouterr().out
    assert f"created database role {owner_role}" in out and "shown once" in out
    owner_url = printed_url(out)
    flags = pg_server.admin(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, "
        "pg_has_role(oid, $2, 'MEMBER') FROM pg_roles WHERE rolname = $1",
        owner_role,
        PEOPLE_ROLE,
    )
    assert tuple(flags[0]) == (False, False, False, False, True)  # least privilege: rows only, via the group

    assert (
        await rflow(
            "--db", owner_url, "users", "add", "eddie@contoso.test", "--role", "engineer", "--db-role", eng_role
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "may not create database roles; a DBA runs" in out
    sql = re.search(r"a DBA runs.*?:\n((?:    .*\n)+)", out).group(1)
    assert "SCRAM-SHA-256$" in sql and "shown once" in out
    assert not pg_server.admin("SELECT 1 FROM pg_roles WHERE rolname = $1", eng_role)
    dba = await asyncpg.connect(make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        await dba.execute(sql)  # in the desk's database: it records the role as made for Contoso
    finally:
        await dba.close()

    ctx = await open_context(settings(printed_url(out)))
    assert (ctx.user.email, ctx.user.account_role) == ("eddie@contoso.test", "engineer")
    await ctx.engine.dispose()
    assert (
        await rflow("--db", printed_url(out), "--user", "olga@contoso.test", "tickets", "add", "T-9", "--subject", "x")
        == 2
    )
    assert "names someone else" in capsys.readouterr().err


@postgres
async def test_a_person_cannot_migrate_and_is_told_who_can(db_url, db, desk):
    url = await person(db, db_url, desk.owner, desk.tech)
    await db.exec(text("UPDATE alembic_version SET version_num = '0001'"))  # as if rflow were upgraded since
    await db.commit()
    with pytest.raises(DatabaseError, match="may not change it: run any rflow command once as the role that owns"):
        await open_context(settings(url))


@postgres
async def test_os_login_is_refused_on_postgres(db, desk):
    with pytest.raises(ValidationFailed, match="--os-login applies to SQLite"):
        await bind_user(db, actor=desk.owner, email=desk.tech.email, os_login="tina")


# --- SQLite on one machine: users bound to OS logins -------------------------------------


@pytest.fixture
def login(monkeypatch):
    """Pretend to be logged in as someone: ``login("tina")``."""

    def become(name: str) -> None:
        monkeypatch.setattr(identity, "current_os_login", lambda: name)

    return become


@sqlite
async def test_a_bound_user_may_be_named_only_from_their_login(db, desk, login):
    await bind_user(db, actor=desk.owner, email=desk.tech.email, os_login="tina")

    login("bob")
    with pytest.raises(
        AccessDenied, match=re.escape("tech@contoso.test is bound to the OS login 'tina'; you are logged in as 'bob'")
    ):
        await find_login(db, desk.tech.email)
    assert (await find_login(db, desk.owner.email)).id == desk.owner.id  # nobody is bound to bob: as before

    login("tina")
    assert (await find_login(db, desk.tech.email)).id == desk.tech.id
    assert (await find_login(db, None)).id == desk.tech.id  # the login says who
    with pytest.raises(
        AccessDenied,
        match=re.escape(
            "the OS login 'tina' is bound to tech@contoso.test; --user owner@contoso.test names someone else"
        ),
    ):
        await find_login(db, desk.owner.email)


@sqlite
def test_the_cli_refuses_a_user_bound_to_another_login(db_url, no_config, capsys):
    me = identity.current_os_login()
    assert main(["--db", db_url, "init", "--account", "Contoso IT", "--email", "owner@contoso.test"]) == 0
    assert (
        main(
            [
                "--db",
                db_url,
                "--user",
                "owner@contoso.test",
                "users",
                "add",
                "tina@contoso.test",
                "--os-login",
                f"not-{me}",
            ]
        )
        == 0
    )
    assert main(["--db", db_url, "--user", "tina@contoso.test", "tickets", "add", "T-1", "--subject", "x"]) == 2
    assert f"is bound to the OS login 'not-{me}'; you are logged in as '{me}'" in capsys.readouterr().err
    assert main(["--db", db_url, "--user", "owner@contoso.test", "users", "unbind", "tina@contoso.test"]) == 0
    assert main(["--db", db_url, "--user", "tina@contoso.test", "users", "list"]) == 0


@sqlite
async def test_db_role_is_refused_on_sqlite(db, desk):
    with pytest.raises(ValidationFailed, match="--db-role applies to PostgreSQL"):
        await bind_user(db, actor=desk.owner, email=desk.tech.email, db_role="tina")


@sqlite
async def test_the_demo_desk_opens_as_any_of_its_people_from_any_login(db, login):
    login("someone-else-entirely")
    await seed_demo(db)
    for email in (TECH_EMAIL, ENGINEER_EMAIL, OWNER_EMAIL):
        assert (await find_login(db, email)).email == email


async def test_only_owners_and_admins_bind_people(db, desk):
    with pytest.raises(AccessDenied, match="only owners and admins may bind users"):
        await bind_user(db, actor=desk.tech, email=desk.tech.email, clear=True)


@sqlite
async def test_an_email_two_accounts_share_on_one_file_is_told_apart_by_the_os_login(db, desk, login):
    from rflow_tui.services.users import add_user

    other = await make_desk(db, "Fabrikam", "fabrikam.test")
    twin = await add_user(db, actor=other.owner, email=desk.tech.email)  # unique per account, not per file
    with pytest.raises(AccessDenied, match="a user in more than one account on this database"):
        await find_login(db, desk.tech.email)
    await bind_user(db, actor=other.owner, email=twin.email, os_login="fay")
    login("fay")
    assert (await find_login(db, desk.tech.email)).id == twin.id
