"""The shared PostgreSQL is the boundary: a hostile tech with psql and their own login.

Each test connects as a person's own role, as a desk does, tries what the services
refuse that role, and checks both the refusal and that nothing changed. Issue 19's
attempts: temporary tables shadowing what the definer functions read, SET ROLE,
writes to another account, in-account writes beyond the role, forged audit rows.
"""

from __future__ import annotations

import asyncio
from uuid import uuid4

import asyncpg
import pytest
from sqlalchemy import text
from sqlmodel import select

from rflow_tui.models import EscalationComment, Flow, L1WalkSession, Notification, Ticket, User
from rflow_tui.services import audit, feed
from rflow_tui.services import escalations as esc
from rflow_tui.services.app_context import open_context
from rflow_tui.services.errors import AccessDenied, ValidationFailed
from rflow_tui.services.identity import provision_role
from rflow_tui.services.library import import_flow_doc
from rflow_tui.services.walks import endings as walk_endings
from rflow_tui.services.walks import flow_steps
from rflow_tui.services.walks import start as walk_start
from rflow_tui.services.walks import steps as walk_steps
from tests.conftest import make_desk
from tests.test_identity import person, settings
from tests.tui_support import SMALL_FLOW
from tests.walk_paths import path_of

REFUSED = (asyncpg.InsufficientPrivilegeError,)

# Catalog tables a SECURITY DEFINER function of rflow's reads, beside every table of the schema
# (read from the catalog in the test, so a table added later is shadowed too).
CATALOG_TABLES = ("pg_class", "pg_roles", "pg_auth_members", "pg_namespace")


async def escalated_walk(db, desk) -> L1WalkSession:
    await import_flow_doc(db, actor=desk.owner, doc=SMALL_FLOW, source="test")
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")
    return await walk_endings.escalate(
        db, actor=desk.tech, session_id=walk.id, reason="disk clicking", reason_category="hardware"
    )


async def unchanged(db, model, row_id):
    return (await db.exec(select(model).where(model.id == row_id).execution_options(populate_existing=True))).one()


@pytest.mark.postgres_only
async def test_a_temporary_table_cannot_stand_in_for_the_tables_a_definer_function_reads(db_url, db, desk):
    other = await make_desk(db, "Fabrikam", "fabrikam.test")
    conn = await asyncpg.connect(await person(db, db_url, desk.owner, desk.tech))
    try:
        role = await conn.fetchval("SELECT session_user")
        tables = [r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        assert {"user", "account", "account_db_role", "audit_log", "audit_head", "ticket"} <= set(tables)
        for table in (*tables, *CATALOG_TABLES):
            await conn.execute(f'CREATE TEMP TABLE "{table}" (LIKE public."user" INCLUDING DEFAULTS)')
            await conn.execute(f'INSERT INTO pg_temp."{table}" SELECT * FROM public."user" WHERE id = $1', desk.tech.id)
            await conn.execute(
                f"UPDATE pg_temp.\"{table}\" SET account_id = $1, account_role = 'owner', db_role = $2",
                other.owner.account_id,
                role,
            )
        await conn.execute("SET search_path = pg_temp, public")
        assert await conn.fetchval("SELECT rflow_session_account()") == desk.tech.account_id
        assert await conn.fetchval("SELECT rflow_session_role()") == "l1_tech"
        assert {r[0] for r in await conn.fetch("SELECT account_id FROM public.ticket")} == {desk.tech.account_id}
        assert (
            await conn.execute(
                "UPDATE public.\"user\" SET account_role = 'owner' WHERE account_id = $1", other.owner.account_id
            )
            == "UPDATE 0"
        )
        row = await conn.fetchrow(
            "SELECT * FROM rflow_audit_append($1, $2, 'user.set_role', 'user', '1', '{}')",
            desk.tech.account_id,
            desk.owner.id,
        )
        assert row["actor_user_id"] == desk.tech.id  # the server's actor, not the one asked for
    finally:
        await conn.close()
    roles = {u.account_role for u in await db.exec(select(User).where(User.account_id == other.owner.account_id))}
    assert "l1_tech" in roles  # nobody of theirs was promoted


@pytest.mark.postgres_only
async def test_a_person_cannot_become_another_role(db_url, db, desk, pg_server):
    conn = await asyncpg.connect(await person(db, db_url, desk.owner, desk.tech))
    try:
        owner_role = await conn.fetchval("SELECT tableowner FROM pg_tables WHERE tablename = 'ticket'")
        for statement in (f'SET ROLE "{owner_role}"', f'SET SESSION AUTHORIZATION "{owner_role}"'):
            with pytest.raises(REFUSED):
                await conn.execute(statement)
        for ddl in ("ALTER TABLE ticket DISABLE ROW LEVEL SECURITY", "DROP POLICY rflow_own_account ON ticket"):
            with pytest.raises(REFUSED):
                await conn.execute(ddl)
    finally:
        await conn.close()


@pytest.mark.postgres_only
async def test_a_tech_cannot_write_what_the_services_refuse_a_tech(db_url, db, desk):
    walk = await escalated_walk(db, desk)
    comment = await esc.add_comment(db, actor=desk.engineer, session_id=walk.id, body="looking")
    flow = (await db.exec(select(Flow))).first()
    note = (await db.exec(select(Notification))).first()
    assert note is not None and note.recipient_user_id != desk.tech.id
    conn = await asyncpg.connect(await person(db, db_url, desk.owner, desk.tech))
    try:
        rewrite = "Disable Microsoft Defender real-time protection, then reboot."
        for statement in (  # a flow version is never rewritten in place, by anyone (0014)
            "UPDATE flow SET title = $1",
            "UPDATE flow SET flow_data = json_build_object('text', $1::text)",
        ):
            with pytest.raises(REFUSED):
                await conn.execute(statement, rewrite)
        attempts = [
            ("UPDATE l1_walk_session SET resolution_notes = $1, status = 'resolved'", rewrite),
            # others' notifications (the tech's own are theirs to mark read)
            (
                "UPDATE notification SET read_at = now() "
                "WHERE recipient_user_id IS DISTINCT FROM rflow_session_user_id() AND $1::text IS NOT NULL",
                rewrite,
            ),
            ("UPDATE flowproposal SET status = 'approved' WHERE $1::text IS NOT NULL", rewrite),
        ]
        for statement, value in attempts:
            assert await conn.execute(statement, value) == "UPDATE 0", statement
        with pytest.raises(REFUSED):
            await conn.execute("UPDATE escalation_comment SET body = $1", rewrite)
        with pytest.raises(REFUSED):
            await conn.execute(
                "INSERT INTO flow (account_id, slug, version, title, category, flow_data, is_current, created_at) "
                "VALUES ($1, 'evil', 9, 'Evil', '', '{}', true, now())",
                desk.tech.account_id,
            )
        with pytest.raises(REFUSED):
            await conn.execute(
                "INSERT INTO escalation_comment (account_id, session_id, author_user_id, body, created_at) "
                "VALUES ($1, $2, $3, 'I closed it', now())",
                desk.tech.account_id,
                walk.id,
                desk.engineer.id,
            )
    finally:
        await conn.close()
    assert (await unchanged(db, Flow, flow.id)).flow_data == flow.flow_data
    assert (await unchanged(db, EscalationComment, comment.id)).body == "looking"
    kept = await unchanged(db, L1WalkSession, walk.id)
    assert (kept.status, kept.resolution_notes) == ("escalated", None)
    assert (await unchanged(db, Notification, note.id)).read_at is None
    assert len(list(await db.exec(select(EscalationComment)))) == 1


async def _walk_with_a_step(db, actor, ticket_id: str) -> L1WalkSession:
    flow = (await db.exec(select(Flow).where(Flow.account_id == actor.account_id))).first()
    walk = await walk_start.start_flow_session(db, actor=actor, ticket_id=ticket_id, flow_id=flow.id)
    await flow_steps.answer_flow_node(db, actor=actor, session_id=walk.id, answer="yes")
    return walk


@pytest.mark.postgres_only
async def test_a_tech_only_appends_steps_to_their_own_active_walk(db_url, db, desk):
    """walk_step: a step goes only into one's own active walk, a step is only ever marked
    undone (once, keeping what it recorded), and nobody deletes one."""
    other = await make_desk(db, "Fabrikam", "fabrikam.test")
    for owner in (desk.owner, other.owner):
        await import_flow_doc(db, actor=owner, doc=SMALL_FLOW, source="test")
    mine = await _walk_with_a_step(db, desk.tech, "T-1")
    theirs = await _walk_with_a_step(db, desk.coverage, "T-2")
    closed = await _walk_with_a_step(db, desk.tech, "T-3")
    await walk_endings.escalate(db, actor=desk.tech, session_id=closed.id, reason="r", reason_category="other")
    foreign = await _walk_with_a_step(db, other.tech, "T-1")
    before = {w.id: await path_of(db, w) for w in (mine, theirs, closed, foreign)}
    forged = '{"node_id": "q-account", "question": "Disable the firewall?", "answer": "yes"}'
    undo = """UPDATE walk_step SET undone = true,
        step = (step::jsonb || '{"undone": true, "undone_at": "2026-01-01T00:00:00+00:00"}')::json
        WHERE walk_id = $1"""
    conn = await asyncpg.connect(await person(db, db_url, desk.owner, desk.tech))
    try:
        insert = "INSERT INTO walk_step (account_id, walk_id, seq, step, undone) VALUES ($1, $2, 9, $3, false)"
        for walk in (theirs, closed, foreign):  # a colleague's walk, an ended one, another desk's
            with pytest.raises(REFUSED):
                await conn.execute(insert, walk.account_id, walk.id, forged)
        with pytest.raises(REFUSED):  # one's own walk filed under another account
            await conn.execute(insert, other.tech.account_id, mine.id, forged)
        for walk in (theirs, closed, foreign):
            assert await conn.execute(undo, walk.id) == "UPDATE 0"
        for statement in (
            "UPDATE walk_step SET step = json_build_object('node_id', 'forged') WHERE walk_id = $1",
            "UPDATE walk_step SET seq = seq + 5 WHERE walk_id = $1",
            "UPDATE walk_step SET undone = true WHERE walk_id = $1",  # undone, but not said when
            "DELETE FROM walk_step WHERE walk_id = $1",
        ):
            with pytest.raises(REFUSED):
                await conn.execute(statement, mine.id)
        assert await conn.execute(undo, mine.id) == "UPDATE 1"  # what step_back does: allowed, once
        assert await conn.execute(undo, mine.id) == "UPDATE 0"
    finally:
        await conn.close()
    for walk in (theirs, closed, foreign):
        assert await path_of(db, walk) == before[walk.id]
    (step,) = await path_of(db, mine)
    assert {k: v for k, v in step.items() if k not in ("undone", "undone_at")} == before[mine.id][0]


@pytest.mark.postgres_only
async def test_no_person_writes_the_audit_log_or_its_head(db_url, db, desk):
    await escalated_walk(db, desk)
    urls = {who.id: await person(db, db_url, desk.owner, who) for who in (desk.tech, desk.owner)}
    before = await audit.verify(db, actor=desk.owner)
    assert before.intact
    for who in (desk.tech, desk.owner):
        conn = await asyncpg.connect(urls[who.id])
        try:
            for statement in (
                "INSERT INTO audit_log (account_id, seq, action, target_type, details, created_at, prev_hash, "
                "row_hash) VALUES ($1, 999, 'user.set_role', 'user', '{}', now(), '', '')",
                "UPDATE audit_log SET action = 'nothing' WHERE account_id = $1",
                "DELETE FROM audit_log WHERE account_id = $1",
                "UPDATE audit_head SET seq = seq + 1 WHERE account_id = $1",
                "INSERT INTO audit_head (account_id, seq, hash) VALUES ($1, 1, '')",
            ):
                with pytest.raises(REFUSED):
                    await conn.execute(statement, desk.tech.account_id)
            with pytest.raises(asyncpg.InvalidParameterValueError):  # unverifiable details are not stored
                await conn.fetch("SELECT * FROM rflow_audit_append($1, NULL, 'x', 'x', NULL, '{ }')", who.account_id)
        finally:
            await conn.close()
    after = await audit.verify(db, actor=desk.owner)
    assert after.intact and (after.rows, after.head_seq) == (before.rows, before.head_seq)


@pytest.mark.postgres_only
async def test_a_deactivated_or_unbound_role_cannot_append_to_the_audit_log(db_url, db, desk, pg_server):
    from rflow_tui.services.users import update_user

    url = await person(db, db_url, desk.owner, desk.engineer)
    await update_user(db, actor=desk.owner, email=desk.engineer.email, active=False)
    pg_server.admin("CREATE ROLE nobody_here LOGIN PASSWORD 'pw' IN ROLE rflow_people")
    from tests.test_identity import as_role

    for target in (url, as_role(db_url, "nobody_here", "pw")):
        conn = await asyncpg.connect(target)
        try:
            with pytest.raises(REFUSED):
                await conn.fetch(
                    "SELECT * FROM rflow_audit_append($1, $2, 'user.set_role', 'user', '1', '{}')",
                    desk.owner.account_id,
                    desk.owner.id,
                )
        finally:
            await conn.close()
    pg_server.admin("DROP ROLE nobody_here")
    assert (await audit.verify(db, actor=desk.owner)).intact


@pytest.mark.postgres_only
async def test_each_person_works_through_the_app_on_their_own_role(db_url, db, desk):
    """The rules hold the app to nothing less: a tech walks and escalates, an engineer claims,
    comments and closes, each connected as their own role; the server-written log is intact."""
    await import_flow_doc(db, actor=desk.owner, doc=SMALL_FLOW, source="test")
    tech_url = await person(db, db_url, desk.owner, desk.tech)
    engineer_url = await person(db, db_url, desk.owner, desk.engineer)
    tech = await open_context(settings(tech_url))
    try:
        async with tech.open_db() as tdb:
            flow = (await tdb.exec(select(Flow))).one()
            walked = await walk_start.start_flow_session(tdb, actor=tech.user, ticket_id="T-3", flow_id=flow.id)
            for answer in ("yes", None, "back", None):
                if answer == "back":
                    await flow_steps.step_back(tdb, actor=tech.user, session_id=walked.id)
                else:
                    await flow_steps.answer_flow_node(tdb, actor=tech.user, session_id=walked.id, answer=answer)
            walk = await walk_start.start_adhoc_session(tdb, actor=tech.user, ticket_id="T-2")
            await walk_steps.update_notes(tdb, actor=tech.user, session_id=walk.id, notes=["printer jams at tray 2"])
            await walk_endings.escalate(
                tdb, actor=tech.user, session_id=walk.id, reason="fuser", reason_category="hardware"
            )
    finally:
        await tech.engine.dispose()
    engineer = await open_context(settings(engineer_url))
    try:
        async with engineer.open_db() as edb:
            await esc.claim(edb, actor=engineer.user, session_id=walk.id)
            await esc.add_comment(edb, actor=engineer.user, session_id=walk.id, body="ordering a fuser")
            await esc.close(edb, actor=engineer.user, session_id=walk.id, outcome="fixed", notes="new fuser")
    finally:
        await engineer.engine.dispose()
    kept = await unchanged(db, L1WalkSession, walk.id)
    assert kept.closed_by_user_id == desk.engineer.id and kept.outcome == "fixed"
    assert [(s["node_id"], bool(s.get("undone"))) for s in await path_of(db, walked)] == [
        ("q-account", False),
        ("i-safe", True),
        ("i-safe", False),
    ]
    ticket = (await db.exec(select(Ticket).where(Ticket.ticket_id == "T-2"))).one()
    assert ticket.status != "open"
    verdict = await audit.verify(db, actor=desk.owner)
    assert verdict.intact, verdict.problem
    actors = {e.actor_user_id for e in await audit.entries(db, actor=desk.owner, last=6)}
    assert {desk.tech.id, desk.engineer.id} <= actors


@pytest.mark.sqlite_only
async def test_a_new_sqlite_desk_is_private_to_its_owner_whatever_the_umask(tmp_path, backend):
    import os
    import stat

    from rflow_tui.db import open_store

    folder = tmp_path / "desk"
    old = os.umask(0)
    try:
        engine, open_db = await open_store(f"sqlite+aiosqlite:///{folder / 'rflow.sqlite3'}")
        async with open_db() as session:
            await make_desk(session)
        await engine.dispose()
    finally:
        os.umask(old)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = [p for p in folder.iterdir() if p.name.startswith("rflow.sqlite3")]
    assert files and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files), files


@pytest.mark.sqlite_only
async def test_an_older_desk_readable_by_others_is_made_private_when_it_is_opened(tmp_path, backend):
    import os
    import stat

    from rflow_tui.db import open_store

    path = tmp_path / "rflow.sqlite3"
    engine, open_db = await open_store(f"sqlite+aiosqlite:///{path}")
    await engine.dispose()
    os.chmod(path, 0o644)  # as rflow before issue 19 left it
    engine, open_db = await open_store(f"sqlite+aiosqlite:///{path}")
    try:
        async with open_db() as session:
            await make_desk(session)
        files = [p for p in tmp_path.iterdir() if p.name.startswith("rflow.sqlite3")]
        assert len(files) >= 2 and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files), files
    finally:
        await engine.dispose()


# --- item 4: no squatting, no oracles, no tracebacks ------------------------------------------


async def as_person(url: str):
    """The app, opened as the person whose role ``url`` logs in with."""
    return await open_context(settings(url))


@pytest.mark.postgres_only
async def test_a_role_name_bound_before_anyone_made_it_captures_nobody(db_url, db, desk, pg_server):
    """An owner binds role names nobody uses yet; whoever the DBA later makes them for is not theirs."""
    from rflow_tui.services.users import add_user, bind_user
    from tests.test_identity import as_role

    other = await make_desk(db, "Fabrikam", "fabrikam.test")
    owner_url = await person(db, db_url, desk.owner, desk.owner)
    owner = await as_person(owner_url)
    later_for_fabrikam, made_by_hand = f"p_{uuid4().hex[:10]}", f"p_{uuid4().hex[:10]}"
    try:
        async with owner.open_db() as odb:
            await bind_user(odb, actor=owner.user, email=desk.tech.email, db_role=later_for_fabrikam)
            await bind_user(odb, actor=owner.user, email=desk.engineer.email, db_role=made_by_hand)
    finally:
        await owner.engine.dispose()
    # Fabrikam's owner gives Bob that name, and rflow makes it for Fabrikam: no clash, no hint of Contoso.
    bob = await add_user(db, actor=other.owner, email="bob@fabrikam.test", db_role=later_for_fabrikam)
    outcome = await provision_role(db, actor=other.owner, role=later_for_fabrikam)
    assert outcome.created
    ctx = await as_person(as_role(db_url, later_for_fabrikam, outcome.password))
    try:
        assert (ctx.user.id, ctx.user.account_id) == (bob.id, other.owner.account_id)
    finally:
        await ctx.engine.dispose()
    # A role a DBA makes by hand, recorded for no account, logs in as nobody and sees nothing;
    # the owner cannot record it for their account themselves, nor take Bob's.
    pg_server.admin(f"CREATE ROLE {made_by_hand} LOGIN PASSWORD 'pw' IN ROLE rflow_people")
    conn = await asyncpg.connect(owner_url)
    try:
        for name in (made_by_hand, later_for_fabrikam):
            with pytest.raises(REFUSED):
                await conn.execute(
                    "INSERT INTO account_db_role (role_name, account_id) VALUES ($1, $2)", name, desk.owner.account_id
                )
        with pytest.raises(REFUSED):
            await conn.execute("UPDATE account_db_role SET account_id = $1", desk.owner.account_id)
    finally:
        await conn.close()
    url = as_role(db_url, made_by_hand, "pw")
    with pytest.raises(AccessDenied, match="is not bound to an rflow user"):
        await as_person(url)
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM ticket") == 0
        assert await conn.fetchval('SELECT count(*) FROM "user"') == 0
    finally:
        await conn.close()


@pytest.mark.postgres_only
async def test_adding_or_binding_answers_alike_whether_another_account_has_the_name_or_not(db_url, db, desk, pg_server):
    from rflow_tui.services.users import add_user, bind_user

    other = await make_desk(db, "Fabrikam", "fabrikam.test")
    await person(db, db_url, other.owner, other.tech)
    theirs = (await unchanged(db, User, other.tech.id)).db_role
    unrecorded = f"p_{uuid4().hex[:10]}"
    pg_server.admin(f"CREATE ROLE {unrecorded} LOGIN IN ROLE rflow_people")
    dba_role = (await db.exec(text("SELECT current_user"))).scalar()
    owner = await as_person(await person(db, db_url, desk.owner, desk.owner))
    try:
        async with owner.open_db() as odb:
            refusals = {}
            for role in (theirs, unrecorded):
                with pytest.raises(ValidationFailed) as refused:
                    await bind_user(odb, actor=owner.user, email=desk.tech.email, db_role=role)
                refusals[role] = str(refused.value).replace(role, "ROLE")
            assert refusals[theirs] == refusals[unrecorded]
            assert "was not made for this account" in refusals[theirs]
            with pytest.raises(ValidationFailed, match="holds more rights than a person's"):
                await bind_user(odb, actor=owner.user, email=desk.tech.email, db_role=dba_role)
            # An email another account has is added like any new one; within the account, said plainly.
            same_name = await add_user(odb, actor=owner.user, email=other.tech.email, role="l1_tech")
            fresh = await add_user(odb, actor=owner.user, email="nobody.anywhere@fabrikam.test", role="l1_tech")
            assert same_name.account_id == fresh.account_id == desk.owner.account_id
            with pytest.raises(ValidationFailed, match=f"a user {desk.engineer.email} already exists in this account"):
                await add_user(odb, actor=owner.user, email=desk.engineer.email)
            mine = (await odb.exec(select(User.db_role).where(User.id == desk.owner.id))).one()
            with pytest.raises(ValidationFailed, match=f"already bound to {desk.owner.email} in this account"):
                await bind_user(odb, actor=owner.user, email=desk.tech.email, db_role=mine)
    finally:
        await owner.engine.dispose()
    assert (await unchanged(db, User, desk.tech.id)).db_role is None
    kept = await unchanged(db, User, other.tech.id)
    assert (kept.account_id, kept.db_role) == (other.owner.account_id, theirs)


@pytest.mark.postgres_only
async def test_init_from_a_persons_role_says_what_is_wrong_and_who_may(db_url, db, desk, tmp_path, monkeypatch, capsys):
    from rflow_tui.models import Account
    from tests.test_identity import rflow

    monkeypatch.setenv("RFLOW_CONFIG", str(tmp_path / "rflow.toml"))
    tech_url = await person(db, db_url, desk.owner, desk.tech)
    dba_role = (await db.exec(text("SELECT current_user"))).scalar()
    code = await rflow("--db", tech_url, "init", "--account", "Evil Corp", "--email", "eve@evil.test")
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "`rflow init`" in err and desk.tech.email in err and f"('{dba_role}')" in err, err
    assert [a.name for a in await db.exec(select(Account))] == ["Contoso IT"]
    assert not (tmp_path / "rflow.toml").exists()


@pytest.mark.postgres_only
async def test_whatever_else_the_server_refuses_a_persons_role_is_said_with_who_may(db_url, db, desk):
    from sqlalchemy.exc import DBAPIError

    from rflow_tui.commands.refusals import refused_by_server
    from rflow_tui.config import normalize_database_url
    from rflow_tui.db import make_engine

    engine = make_engine(normalize_database_url(await person(db, db_url, desk.owner, desk.tech)))
    dba_role = (await db.exec(text("SELECT current_user"))).scalar()
    try:
        with pytest.raises(DBAPIError) as refused:
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO account (name) VALUES ('Evil Corp')"))
        message = await refused_by_server(engine, refused.value, "adding an account")
    finally:
        await engine.dispose()
    assert message is not None and "permission denied for table account" in message
    assert desk.tech.email in message and f"('{dba_role}')" in message and "Nothing was changed" in message


@pytest.mark.postgres_only
async def test_a_deactivated_persons_role_is_told_it_is_deactivated(db_url, db, desk, monkeypatch, tmp_path, capsys):
    from rflow_tui.services.users import update_user
    from tests.test_identity import rflow

    (tmp_path / "rflow.toml").write_text("")
    monkeypatch.setenv("RFLOW_CONFIG", str(tmp_path / "rflow.toml"))
    url = await person(db, db_url, desk.owner, desk.engineer)
    await update_user(db, actor=desk.owner, email=desk.engineer.email, active=False)
    with pytest.raises(AccessDenied, match=f"which is {desk.engineer.email}, and {desk.engineer.email} is deactivated"):
        await as_person(url)
    assert await rflow("--db", url, "users", "list") == 2
    err = capsys.readouterr().err
    assert "is deactivated" in err and f"rflow users reactivate {desk.engineer.email}" in err


@pytest.mark.postgres_only
async def test_people_bound_before_the_upgrade_still_log_in_as_themselves(empty_db_url, pg_server):
    from rflow_tui.db import make_engine, open_store, upgrade_schema
    from tests.test_identity import as_role

    role = f"p_{uuid4().hex[:10]}"
    engine = make_engine(empty_db_url)
    async with engine.begin() as conn:
        await conn.run_sync(upgrade_schema, "0006")  # makes rflow_people, if this server had none yet
    pg_server.admin(f"CREATE ROLE {role} LOGIN PASSWORD 'pw' IN ROLE rflow_people")
    async with engine.begin() as conn:
        account = await conn.scalar(text("INSERT INTO account (name, created_at) VALUES ('Old', now()) RETURNING id"))
        await conn.execute(
            text(
                'INSERT INTO "user" (account_id, email, name, account_role, coverage, is_active, created_at, '
                "db_role) VALUES (:account, 'tina@old.test', '', 'l1_tech', false, true, now(), :role)"
            ),
            {"account": account, "role": role},
        )
    await engine.dispose()
    engine, _ = await open_store(empty_db_url)
    await engine.dispose()
    ctx = await as_person(as_role(empty_db_url, role, "pw"))
    try:
        assert (ctx.user.email, ctx.user.account_id) == ("tina@old.test", account)
    finally:
        await ctx.engine.dispose()
    conn = await asyncpg.connect(as_role(empty_db_url, role, "pw"))
    try:
        assert len(await conn.fetchval(feed.CHANNEL_SQL, account)) == len("rflow_feed_") + 32
    finally:
        await conn.close()


# --- item 6: LISTEN/NOTIFY --------------------------------------------------------------------


async def heard_on(conn, channel: str) -> list[str]:
    heard: list[str] = []
    await conn.add_listener(channel, lambda *n: heard.append(n[-1]))
    return heard


@pytest.mark.postgres_only
async def test_another_accounts_role_cannot_find_or_overhear_the_feed_channel(db_url, db, desk):
    other = await make_desk(db, "Fabrikam", "fabrikam.test")
    ours = await asyncpg.connect(await person(db, db_url, desk.owner, desk.engineer))
    hostile = await asyncpg.connect(await person(db, db_url, other.owner, other.tech))
    try:
        channel = await ours.fetchval(feed.CHANNEL_SQL, desk.owner.account_id)
        assert channel != f"rflow_feed_{desk.owner.account_id}" and len(channel) == len("rflow_feed_") + 32
        assert await hostile.fetchval(feed.CHANNEL_SQL, desk.owner.account_id) is None
        assert await hostile.fetch("SELECT feed_channel FROM account WHERE id = $1", desk.owner.account_id) == []
        real = await heard_on(ours, channel)
        guesses = [await heard_on(hostile, f"rflow_feed_{n}") for n in range(1, 20)]
        await escalated_walk(db, desk)
        for _ in range(100):
            if real:
                break
            await asyncio.sleep(0.05)
        assert real == [""]  # the account's own feed hears a ping that carries nothing
        await asyncio.sleep(0.2)
        assert not any(guesses)
    finally:
        await ours.close()
        await hostile.close()


@pytest.mark.postgres_only
async def test_a_forged_notification_shows_nothing_that_is_not_in_the_database(db_url, db, desk):
    from rflow_tui.services.live_feed import FeedStatus, FeedTiming, LiveFeed

    other = await make_desk(db, "Fabrikam", "fabrikam.test")
    engineer = await as_person(await person(db, db_url, desk.owner, desk.engineer))
    hostile = await asyncpg.connect(await person(db, db_url, other.owner, other.tech))
    ours = await asyncpg.connect(await person(db, db_url, desk.owner, desk.tech))
    batches: list[feed.FeedBatch] = []
    statuses: list[FeedStatus] = []
    live = LiveFeed(engineer, batches.append, statuses.append, FeedTiming(fallback_seconds=60))
    runner = asyncio.ensure_future(live.run())
    try:
        channel = await ours.fetchval(feed.CHANNEL_SQL, desk.owner.account_id)
        real = await heard_on(ours, channel)
        for _ in range(200):
            if FeedStatus.LIVE in statuses and batches:
                break
            await asyncio.sleep(0.05)
        assert batches and batches[0].full and batches[0].walks == []
        forged = '{"id": 1, "status": "escalated", "escalation_reason": "call 555-0100 and read them your password"}'
        await hostile.execute("SELECT pg_notify($1, $2)", f"rflow_feed_{desk.owner.account_id}", forged)
        await asyncio.sleep(0.3)
        assert real == []  # a channel named after the account id reaches nobody
        await hostile.execute("SELECT pg_notify($1, $2)", channel, forged)  # as if the name had leaked
        await asyncio.sleep(0.5)
        assert real == [forged] and len(batches) == 1  # woken, re-read, found nothing to show
        walk = await escalated_walk(db, desk)
        for _ in range(100):
            if len(batches) > 1:
                break
            await asyncio.sleep(0.05)
        assert [w.id for b in batches for w in b.walks] == [walk.id]
        assert all("555-0100" not in (w.escalation_reason or "") for b in batches for w in b.walks)
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await engineer.engine.dispose()
        await hostile.close()
        await ours.close()


@pytest.mark.postgres_only
async def test_the_dba_binds_a_role_they_made_and_it_logs_in_as_that_person(db_url, db, desk, pg_server, capsys):
    from tests.test_identity import as_role, rflow

    role = f"p_{uuid4().hex[:10]}"
    pg_server.admin(f"CREATE ROLE {role} LOGIN PASSWORD 'pw'")
    code = await rflow("--db", db_url, "--user", desk.owner.email, "users", "bind", desk.tech.email, "--db-role", role)
    assert code == 0, capsys.readouterr().err
    assert f"bound {desk.tech.email} to the existing database role {role}" in capsys.readouterr().out
    ctx = await as_person(as_role(db_url, role, "pw"))
    try:
        assert ctx.user.id == desk.tech.id
    finally:
        await ctx.engine.dispose()


# --- the PSA outbox: what the desk's keys will post is written only as the services write it ---

OUTBOX_INSERT = """INSERT INTO psa_outbox (account_id, session_id, psa_system, ticket_id, outcome, note,
    idempotency_key, state, attempts, next_attempt_at, created_at)
    VALUES ($1, $2, 'connectwise', $3, 'escalated', 'forged words', 'k', 'pending', 0, now(), now())"""


async def _psa_walk(db, actor, ticket_id: str, *, end: bool = True) -> L1WalkSession:
    walk = await walk_start.start_adhoc_session(db, actor=actor, ticket_id=ticket_id, ticket_kind="psa")
    if end:
        walk = await walk_endings.escalate(db, actor=actor, session_id=walk.id, reason="r", reason_category="other")
    return walk


@pytest.mark.postgres_only
async def test_a_tech_queues_only_their_own_walks_note_and_delivering_never_rewrites_it(db_url, db, desk):
    """psa_outbox: the walk's end queues its row and a push delivers it on the tech's own role;
    a forged row (a colleague's walk, an open one, a second one, another ticket or account)
    is refused, the note and ticket never change after queueing, nobody deletes a row, a
    delivered row stays as it is and only a reviewer re-queues a failed one."""
    from rflow_tui.config import PsaSettings
    from rflow_tui.models import PsaOutboxItem
    from rflow_tui.psa.registry import make_adapter
    from rflow_tui.services import psa_outbox
    from rflow_tui.services.psa_delivery import drain
    from rflow_tui.services.tickets import add_ticket
    from tests.fake_psa import FakeConnectWise

    other = await make_desk(db, "Fabrikam", "fabrikam.test")
    for n in ("501", "502", "503", "504"):
        await add_ticket(db, actor=desk.owner, ticket_id=n, subject=n, ticket_kind="psa", psa_system="connectwise")
    api = FakeConnectWise()
    for n in (501, 504):
        api.add_ticket(n, str(n))
    keys = {"RFLOW_PSA_PUBLIC_KEY": "pub", "RFLOW_PSA_PRIVATE_KEY": "priv", "RFLOW_PSA_CLIENT_ID": "cid"}
    adapter = make_adapter(PsaSettings(kind="connectwise", api_url=api.url, company="contoso", board="x"), keys)
    tech_url = await person(db, db_url, desk.owner, desk.tech)
    engineer_url = await person(db, db_url, desk.owner, desk.engineer)
    tech = await as_person(tech_url)
    try:
        async with tech.open_db() as tdb:
            mine = await _psa_walk(tdb, tech.user, "501")
            failing = await _psa_walk(tdb, tech.user, "504")
        api.fail("POST", "/service/tickets/504/notes", 401)
        drained = await drain(tech.open_db, actor=tech.user, adapter=adapter, statuses={"escalated": "L2"})
        assert (drained.delivered, drained.failed) == (1, 1)
    finally:
        await tech.engine.dispose()
        await adapter.aclose()
        api.close()
    theirs = await _psa_walk(db, desk.coverage, "502")
    active = await _psa_walk(db, desk.tech, "503", end=False)
    await db.rollback()
    rows = {row.session_id: row for row in await db.exec(select(PsaOutboxItem))}
    delivered, failed = rows[mine.id], rows[failing.id]
    assert (delivered.state, failed.state, len(api.notes[501])) == ("delivered", "failed", 1)
    conn = await asyncpg.connect(tech_url)
    try:
        for account_id, walk, ticket in (
            (desk.tech.account_id, theirs, "502"),  # a colleague's ended walk
            (desk.tech.account_id, active, "503"),  # one's own walk, still open
            (desk.tech.account_id, mine, "501"),  # a second note for one's own walk
            (desk.tech.account_id, mine, "502"),  # one's own walk, onto another ticket
            (other.owner.account_id, mine, "501"),  # filed under another account
        ):
            with pytest.raises(REFUSED):
                await conn.execute(OUTBOX_INSERT, account_id, walk.id, ticket)
        for statement in (
            "UPDATE psa_outbox SET note = 'rewritten' WHERE id = $1",
            "UPDATE psa_outbox SET ticket_id = '502' WHERE id = $1",
            "UPDATE psa_outbox SET idempotency_key = 'other' WHERE id = $1",
            "DELETE FROM psa_outbox WHERE id = $1",
        ):
            with pytest.raises(REFUSED):
                await conn.execute(statement, failed.id)
        for row in (delivered, failed):  # delivered: nobody's; failed: a reviewer's to re-queue
            assert await conn.execute("UPDATE psa_outbox SET state = 'pending' WHERE id = $1", row.id) == "UPDATE 0"
    finally:
        await conn.close()
    engineer = await as_person(engineer_url)
    try:
        async with engineer.open_db() as edb:
            await psa_outbox.retry(edb, actor=engineer.user, item_id=failed.id)
    finally:
        await engineer.engine.dispose()
    after = {row.id: row for row in await db.exec(select(PsaOutboxItem).execution_options(populate_existing=True))}
    assert [row.session_id for row in after.values()].count(mine.id) == 1 and len(after) == 3
    assert after[failed.id].state == "pending" and after[failed.id].note == failed.note
    assert after[delivered.id].state == "delivered"


# --- the alert outbox: an escalation's alert is queued only as the escalation queues it ---

ALERT_INSERT = """INSERT INTO alert_outbox (account_id, session_id, ticket_id, reason_category, priority, facts,
    idempotency_key, state, attempts, next_attempt_at, sent_to, created_at)
    VALUES ($1, $2, $3, 'security', '', '{"reason": "call 555-0100"}', 'k', $4, 0, now(), '{}', now())"""


@pytest.mark.postgres_only
async def test_a_tech_queues_only_their_own_escalations_alert_and_sending_never_rewrites_it(db_url, db, desk):
    """alert_outbox: escalating on the tech's own role queues the alert and a push on that role
    sends it; a forged row (a colleague's walk, an open one, a second one, another account) is
    refused, its words and ticket never change, nobody deletes one, and a
    delivered one stays as it is."""
    from rflow_tui.config import AlertSettings
    from rflow_tui.models import AlertOutboxItem
    from rflow_tui.services import alert_outbox
    from tests.fake_alerts import FakeWebhook

    other = await make_desk(db, "Fabrikam", "fabrikam.test")
    hook = FakeWebhook()
    tech_url = await person(db, db_url, desk.owner, desk.tech)
    tech = await as_person(tech_url)
    try:
        async with tech.open_db() as tdb:
            walk = await walk_start.start_adhoc_session(tdb, actor=tech.user, ticket_id="T-1")
            mine = await walk_endings.escalate(
                tdb, actor=tech.user, session_id=walk.id, reason="disk clicking", reason_category="hardware"
            )
        drained = await alert_outbox.drain(tech.open_db, actor=tech.user, alerts=AlertSettings(urls=(hook.url(),)))
        assert drained.delivered == 1 and len(hook.accepted) == 1
    finally:
        await tech.engine.dispose()
        hook.close()
    theirs = await walk_start.start_adhoc_session(db, actor=desk.coverage, ticket_id="T-2")
    theirs = await walk_endings.escalate(
        db, actor=desk.coverage, session_id=theirs.id, reason="r", reason_category="other"
    )
    active = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-3")
    await db.rollback()
    [row] = [r for r in await db.exec(select(AlertOutboxItem)) if r.session_id == mine.id]
    assert row.state == "delivered"
    conn = await asyncpg.connect(tech_url)
    try:
        for account_id, walk_id, ticket in (
            (desk.tech.account_id, theirs.id, "T-2"),  # a colleague's escalation
            (desk.tech.account_id, active.id, "T-3"),  # one's own walk, not escalated
            (other.owner.account_id, mine.id, "T-1"),  # filed under another account
            (desk.tech.account_id, mine.id, "T-1"),  # a second alert for one's own, earlier escalation
        ):
            with pytest.raises(REFUSED):
                await conn.execute(ALERT_INSERT, account_id, walk_id, ticket, "pending")
        for statement in (
            'UPDATE alert_outbox SET facts = \'{"reason": "rewritten"}\' WHERE id = $1',
            "UPDATE alert_outbox SET ticket_id = 'T-2' WHERE id = $1",
            "UPDATE alert_outbox SET idempotency_key = 'other' WHERE id = $1",
            "DELETE FROM alert_outbox WHERE id = $1",
        ):
            with pytest.raises(REFUSED):
                await conn.execute(statement, row.id)
        assert await conn.execute("UPDATE alert_outbox SET state = 'pending' WHERE id = $1", row.id) == "UPDATE 0"
    finally:
        await conn.close()
    after = [r for r in await db.exec(select(AlertOutboxItem).execution_options(populate_existing=True))]
    assert sorted(r.session_id for r in after) == sorted([mine.id, theirs.id])
    assert next(r for r in after if r.session_id == mine.id).state == "delivered"
