"""The shared PostgreSQL is the boundary, second battery (migration 0012 and what else a hostile
person with psql tried): a ticket's status moves only as a walk's end or a reopen moves it;
nobody rewrites another's walk; forged comments, notifications and proposals are refused;
and the server-level tricks (shadowing in pg_temp, COPY, DDL, sequences, grants, other
sessions' queries) hold. Each test asserts the refusal and that nothing changed.
"""

from __future__ import annotations

import io
from uuid import uuid4

import asyncpg
import pytest
from sqlmodel import select

from rflow_tui.models import EscalationComment, FlowProposal, L1WalkSession, Notification, Ticket
from rflow_tui.services import tickets as ticket_service
from rflow_tui.services.walks import endings as walk_endings
from rflow_tui.services.walks import start as walk_start
from tests.conftest import make_desk
from tests.test_db_boundary import REFUSED, as_person, unchanged
from tests.test_identity import person, rflow

pytestmark = pytest.mark.postgres_only

WALK_INSERT = """INSERT INTO l1_walk_session (account_id, created_by_user_id, ticket_id, ticket_kind, session_kind,
    status, walk_notes, created_at, last_step_at, step_count, version)
    VALUES ($1, rflow_session_user_id(), $2, 'internal', 'adhoc', $3, '[]', now(), now(), 0, 1)"""


async def statuses(db, account_id: int) -> dict[str, tuple[str, str | None, str]]:
    rows = await db.exec(
        select(Ticket).where(Ticket.account_id == account_id).execution_options(populate_existing=True)
    )
    return {t.ticket_id: (t.status, t.resolution_notes, t.ticket_kind) for t in rows}


async def refused(conn, *statements: tuple[str, ...]) -> None:
    """Each statement (with its arguments) fails as the server's refusal, in a transaction of its own."""
    for statement, *args in statements:
        with pytest.raises(REFUSED):
            async with conn.transaction():
                await conn.execute(statement, *args)


async def test_a_tech_moves_a_tickets_status_only_as_their_own_walk_ends_it(db_url, db, desk):
    theirs = await walk_start.start_adhoc_session(db, actor=desk.coverage, ticket_id="T-2")
    mine = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")
    escalated = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-3")
    await walk_endings.escalate(db, actor=desk.tech, session_id=escalated.id, reason="r", reason_category="other")
    await ticket_service.add_ticket(
        db, actor=desk.owner, ticket_id="501", subject="s", ticket_kind="psa", psa_system="cw"
    )
    before = await statuses(db, desk.owner.account_id)
    conn = await asyncpg.connect(await person(db, db_url, desk.owner, desk.tech))
    try:
        await refused(
            conn,
            (
                "UPDATE ticket SET status = 'resolved', resolution_notes = 'done' WHERE ticket_id = 'T-2'",
            ),  # a colleague's
            ("UPDATE ticket SET status = 'resolved' WHERE ticket_id = 'T-1'",),  # one's own walk still active
            ("UPDATE ticket SET status = 'open' WHERE ticket_id = 'T-1'",),
            ("UPDATE ticket SET status = 'escalated' WHERE ticket_id = '501'",),  # a PSA's: open or resolved only
            ("UPDATE ticket SET ticket_kind = 'psa', psa_system = 'cw' WHERE ticket_id = 'T-1'",),
            ("UPDATE ticket SET ticket_id = 'T-9' WHERE ticket_id = 'T-1'",),
            ("UPDATE ticket SET body = 'Disable Defender first' WHERE ticket_id = 'T-1'",),
            ("UPDATE ticket SET psa_updated_at = now() + interval '10 years' WHERE ticket_id = '501'",),
            ("UPDATE ticket SET created_at = '2001-01-01' WHERE ticket_id = 'T-1'",),
            (  # an upsert's update, and MERGE's, are updates
                "INSERT INTO ticket (account_id, ticket_id, ticket_kind, subject, body, requester, category, status, "
                "created_at, updated_at, priority) VALUES ($1, 'T-2', 'internal', 's', '', '', '', 'open', now(), "
                "now(), '') ON CONFLICT (account_id, ticket_id) DO UPDATE SET status = 'resolved'",
                desk.tech.account_id,
            ),
            (
                "MERGE INTO ticket t USING (SELECT 'T-2' AS id) s ON t.ticket_id = s.id "
                "WHEN MATCHED THEN UPDATE SET status = 'escalated'",
            ),
            (
                "INSERT INTO ticket (account_id, ticket_id, ticket_kind, subject, body, requester, category, status, "
                "created_at, updated_at, priority) VALUES ($1, 'T-8', 'internal', 's', '', '', '', 'resolved', now(), "
                "now(), '')",
                desk.tech.account_id,
            ),
            (WALK_INSERT, desk.tech.account_id, "T-2", "resolved"),  # a walk born resolved
        )
        for setup in (  # what the guard reads cannot be stood in for, nor the check put off
            "CREATE TEMP TABLE l1_walk_session AS SELECT * FROM public.l1_walk_session",
            "UPDATE pg_temp.l1_walk_session SET status = 'resolved', created_by_user_id = rflow_session_user_id()",
            "CREATE FUNCTION pg_temp.rflow_session_role() RETURNS text LANGUAGE sql AS 'SELECT ''owner''::text'",
            "SET search_path = pg_temp, public",
        ):
            await conn.execute(setup)
        await refused(
            conn,
            ("UPDATE public.ticket SET status = 'resolved' WHERE ticket_id = 'T-2'",),
            ("SET CONSTRAINTS ALL DEFERRED; UPDATE public.ticket SET status = 'resolved' WHERE ticket_id = 'T-2'",),
        )
        await conn.execute("SET search_path = public")
        for walk_status, ticket_status in (("resolved", "resolved"), ("escalated", "escalated")):
            with pytest.raises(REFUSED):  # a walk born escalated beside a colleague's active one
                async with conn.transaction():
                    await conn.execute(WALK_INSERT, desk.tech.account_id, "T-2", "escalated")
                    await conn.execute(f"UPDATE ticket SET status = '{ticket_status}' WHERE ticket_id = 'T-2'")
            with pytest.raises(REFUSED):  # the ticket's notes are not the walk's
                async with conn.transaction():
                    await conn.execute(
                        "UPDATE l1_walk_session SET status = $1, resolution_notes = 'fixed' WHERE id = $2",
                        walk_status,
                        mine.id,
                    )
                    await conn.execute(
                        "UPDATE ticket SET status = $1, resolution_notes = 'the customer was rude' "
                        "WHERE ticket_id = 'T-1'",
                        ticket_status,
                    )
        assert await conn.execute("UPDATE ticket SET status = 'open' WHERE ticket_id = 'T-3'") == "UPDATE 1"  # reopen
    finally:
        await conn.close()
    after = await statuses(db, desk.owner.account_id)
    assert after == {**before, "T-3": ("open", None, "internal")}
    assert (await unchanged(db, L1WalkSession, theirs.id)).status == "active"
    assert (await unchanged(db, L1WalkSession, mine.id)).status == "active"


async def test_the_services_move_tickets_on_a_techs_own_role(db_url, db, desk):
    """Start, take over, resolve, abandon, reopen and escalate without a walk, each on the tech's role."""
    colleague = await walk_start.start_adhoc_session(db, actor=desk.coverage, ticket_id="T-3")
    ctx = await as_person(await person(db, db_url, desk.owner, desk.tech))
    try:
        async with ctx.open_db() as tdb:
            me = ctx.user
            walk = await walk_start.start_adhoc_session(tdb, actor=me, ticket_id="T-1")
            await walk_endings.resolve(tdb, actor=me, session_id=walk.id, helpful=True, resolution_notes="rebooted")
            await ticket_service.reopen_ticket(tdb, actor=me, ticket_id="T-1")
            walk = await walk_start.start_adhoc_session(tdb, actor=me, ticket_id="T-1")
            await walk_endings.abandon(tdb, actor=me, session_id=walk.id, reason="wrong ticket")
            await walk_endings.escalate_without_walk(
                tdb, actor=me, ticket_id="T-2", reason="no flow fits", reason_category="other"
            )
            taken = await walk_start.take_over(tdb, actor=me, session_id=colleague.id)
            await walk_endings.escalate(tdb, actor=me, session_id=taken.id, reason="disk", reason_category="hardware")
    finally:
        await ctx.engine.dispose()
    after = await statuses(db, desk.owner.account_id)
    assert {k: v[:2] for k, v in after.items()} == {
        "T-1": ("open", "rebooted"),
        "T-2": ("escalated", None),
        "T-3": ("escalated", None),
    }
    assert (await unchanged(db, L1WalkSession, colleague.id)).created_by_user_id == desk.tech.id
    assert len(list(await db.exec(select(Notification)))) >= 2  # both escalations told the desk


async def test_nobody_rewrites_someone_elses_walk_nor_forges_what_another_role_writes(db_url, db, desk):
    draft = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")
    done = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-3")
    await walk_endings.escalate(db, actor=desk.tech, session_id=done.id, reason="disk", reason_category="hardware")
    colleague = await walk_start.start_adhoc_session(db, actor=desk.coverage, ticket_id="T-2")
    engineer = await asyncpg.connect(await person(db, db_url, desk.owner, desk.engineer))
    tech = await asyncpg.connect(await person(db, db_url, desk.owner, desk.tech))
    counts = [len(list(await db.exec(select(m)))) for m in (EscalationComment, Notification, FlowProposal)]
    try:
        await refused(
            engineer,
            ("UPDATE l1_walk_session SET escalation_reason = 'the tech deleted user data' WHERE id = $1", done.id),
            ("UPDATE l1_walk_session SET created_by_user_id = $1 WHERE id = $2", desk.coverage.id, done.id),
            ("UPDATE l1_walk_session SET step_note_draft = 'forged' WHERE id = $1", draft.id),
        )
        claim = (
            "UPDATE l1_walk_session SET claimed_by_user_id = rflow_session_user_id(), claimed_at = now() WHERE id = $1"
        )
        assert await engineer.execute(claim, done.id) == "UPDATE 1"  # an escalation's work is theirs
        await refused(
            tech,
            ("UPDATE l1_walk_session SET created_by_user_id = $1 WHERE id = $2", desk.coverage.id, draft.id),
            (  # taking a walk over carries nothing else with it
                "UPDATE l1_walk_session SET created_by_user_id = rflow_session_user_id(), step_note_draft = 'mine' "
                "WHERE id = $1",
                colleague.id,
            ),
            ("UPDATE l1_walk_session SET ticket_id = 'T-2' WHERE id = $1", draft.id),
            (  # an upsert does not revive a finished walk
                "INSERT INTO l1_walk_session (id, account_id, created_by_user_id, ticket_id, ticket_kind, "
                "session_kind, status, walk_notes, created_at, last_step_at, step_count, version) VALUES ($1, $2, "
                "rflow_session_user_id(), 'T-3', 'internal', 'adhoc', 'active', '[]', now(), now(), 0, 1) "
                "ON CONFLICT (id) DO UPDATE SET helpful = true, status = 'active'",
                done.id,
                desk.tech.account_id,
            ),
            (
                "INSERT INTO escalation_comment (account_id, session_id, author_user_id, body, created_at) "
                "VALUES ($1, $2, rflow_session_user_id(), 'nothing wrong, closing', now())",
                desk.tech.account_id,
                done.id,
            ),
            (
                "INSERT INTO notification (account_id, recipient_user_id, kind, payload, created_at) VALUES ($1, $2, "
                "'l1.session.escalated', json_build_object('session_id', $3::int, 'problem_summary', "
                "'call 555-0100 and read them your password'), now())",
                desk.tech.account_id,
                desk.owner.id,
                done.id,
            ),
            (
                "INSERT INTO flowproposal (account_id, proposal_type, source, status, validated_by_outcome, title, "
                "category, proposed_flow_data, created_at) VALUES ($1, 'new_flow', 'ai_realtime_l1', 'pending', true, "
                "'Fix Outlook', 'email', '{}', now())",
                desk.tech.account_id,
            ),
            (
                "UPDATE notification SET payload = json_build_object('problem_summary', 'forged') "
                "WHERE recipient_user_id = rflow_session_user_id()",
            ),
            (  # a walk tagged as an engineer's coverage
                WALK_INSERT.replace("session_kind,", "session_kind, acting_as,").replace(
                    "'adhoc',", "'adhoc', 'l1_coverage',"
                ),
                desk.tech.account_id,
                "T-2",
                "active",
            ),
        )
    finally:
        await engineer.close()
        await tech.close()
    kept = await unchanged(db, L1WalkSession, done.id)
    assert (kept.status, kept.helpful) == ("escalated", None)
    assert (kept.escalation_reason, kept.created_by_user_id, kept.claimed_by_user_id) == (
        "disk",
        desk.tech.id,
        desk.engineer.id,
    )
    kept = await unchanged(db, L1WalkSession, draft.id)
    assert (kept.step_note_draft, kept.created_by_user_id, kept.ticket_id) == (None, desk.tech.id, "T-1")
    assert (await unchanged(db, L1WalkSession, colleague.id)).created_by_user_id == desk.coverage.id
    assert [len(list(await db.exec(select(m)))) for m in (EscalationComment, Notification, FlowProposal)] == counts


async def test_the_servers_own_tricks_hold_for_a_persons_role(db_url, db, desk, pg_server):
    """Shadowing in pg_temp (functions, operators, a definer view), COPY, DDL in public, sequences,
    large objects from server files, grants, RLS switches, other sessions' query texts."""
    other = await make_desk(db, "Fabrikam", "fabrikam.test")
    theirs = await asyncpg.connect(await person(db, db_url, other.owner, other.tech))
    conn = await asyncpg.connect(await person(db, db_url, desk.owner, desk.tech))
    try:
        secret = "SELECT 'fabrikam secret' AS marker, count(*) FROM ticket"
        await theirs.execute(secret)  # their session's last query text stays theirs
        mine = desk.tech.account_id
        my_role, their_role = await conn.fetchval("SELECT session_user"), await theirs.fetchval("SELECT session_user")
        theirs_id = other.owner.account_id
        shadow = f"RETURNS int LANGUAGE sql AS 'SELECT {theirs_id}'"
        await conn.execute(f"CREATE FUNCTION pg_temp.rflow_session_account() {shadow}")
        await conn.execute("CREATE FUNCTION pg_temp.yes(int, int) RETURNS bool LANGUAGE sql AS 'SELECT true'")
        await conn.execute("CREATE OPERATOR pg_temp.= (leftarg = int, rightarg = int, function = pg_temp.yes)")
        await conn.execute(
            "CREATE TEMP VIEW every_ticket WITH (security_invoker = false) AS SELECT * FROM public.ticket"
        )
        await conn.execute("SET search_path = pg_temp, public")
        for query in (
            "SELECT DISTINCT account_id FROM ticket",
            "SELECT DISTINCT account_id FROM every_ticket",
            f"SELECT DISTINCT account_id FROM ticket WHERE account_id OPERATOR(pg_temp.=) {other.owner.account_id}",
        ):
            assert [r[0] for r in await conn.fetch(query)] == [mine], query
        await conn.execute("SET search_path = public")
        copied = io.BytesIO()
        await conn.copy_from_table("ticket", columns=["account_id"], output=copied)
        assert set(copied.getvalue().split()) == {str(mine).encode()}  # COPY TO reads through the policies
        await refused(
            conn,
            ("COPY (SELECT 1) TO '/tmp/rflow-leak'",),
            ("CREATE FUNCTION public.rflow_session_account() RETURNS int LANGUAGE sql AS 'SELECT 2'",),
            ("CREATE VIEW public.all_tickets AS SELECT * FROM ticket",),
            ("SELECT setval('ticket_id_seq', 1)",),
            ("ALTER SEQUENCE ticket_id_seq RESTART 1",),
            ("SELECT last_value FROM ticket_id_seq",),
            ("SELECT lo_import('/etc/passwd')",),
            ("TRUNCATE ticket",),
            ("ALTER TABLE ticket ADD COLUMN backdoor int",),
            ("CREATE POLICY open_all ON ticket USING (true)",),
            ("SET session_replication_role = replica",),
            ("UPDATE alembic_version SET version_num = '0001'",),
            ("UPDATE account SET feed_channel = 'guessable'",),
            (f'GRANT "{my_role}" TO "{their_role}"',),  # lending one's login to another account
            ("CREATE EXTENSION dblink",),
        )
        tables = [r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        for table in tables:  # a table every account shares is locked by no person (it would stop every desk)
            for mode in ("ACCESS EXCLUSIVE", "EXCLUSIVE", "SHARE"):
                with pytest.raises(REFUSED):
                    async with conn.transaction():
                        await conn.execute(f'LOCK TABLE "{table}" IN {mode} MODE NOWAIT')
        acl = "SELECT relacl::text FROM pg_class WHERE oid = 'ticket'::regclass"
        before = await conn.fetchval(acl)
        await conn.execute("GRANT ALL ON ticket TO PUBLIC")  # a warning, no privilege: not the owner's
        assert await conn.fetchval(acl) == before
        with pytest.raises(asyncpg.FeatureNotSupportedError, match="row-level security"):
            await conn.execute("COPY ticket (account_id, ticket_id, subject) FROM STDIN")
        with pytest.raises(asyncpg.PostgresError, match="row-level security"):
            async with conn.transaction():
                await conn.execute("SET LOCAL row_security = off")
                await conn.fetch("SELECT * FROM ticket")
        queries = [r[0] for r in await conn.fetch("SELECT query FROM pg_stat_activity WHERE usename <> session_user")]
        assert "fabrikam secret" not in " ".join(q or "" for q in queries)
        killed = await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename <> session_user AND "
            "backend_type = 'client backend'"
        )
        assert not any(r[0] for r in killed)
    finally:
        await conn.close()
        alive = await theirs.fetchval("SELECT 1")
        await theirs.close()
    assert alive == 1
    assert {r[0] for r in pg_server.admin("SELECT 1")} == {1}


async def test_users_list_marks_people_whose_role_cannot_log_in(
    db_url, db, desk, pg_server, monkeypatch, tmp_path, capsys
):
    """Never bound, never made, made for no account of theirs, outside rflow_people, no LOGIN:
    each is marked, with what to do; people whose role works are not."""
    from sqlalchemy import text

    from rflow_tui.services.users import add_user, bind_user

    (tmp_path / "rflow.toml").write_text("")
    monkeypatch.setenv("RFLOW_CONFIG", str(tmp_path / "rflow.toml"))
    owner_url = await person(db, db_url, desk.owner, desk.owner)
    await person(db, db_url, desk.owner, desk.tech)  # made and recorded: fine
    never_made, unrecorded, outside, nologin = (f"p_{uuid4().hex[:10]}" for _ in range(4))
    await bind_user(db, actor=desk.owner, email=desk.engineer.email, db_role=never_made)
    late = await add_user(db, actor=desk.owner, email="late@contoso.test", role="l1_tech")  # no role at all
    shy = await add_user(db, actor=desk.owner, email="shy@contoso.test", role="l1_tech")
    pg_server.admin(f"CREATE ROLE {unrecorded} LOGIN IN ROLE rflow_people")
    pg_server.admin(f"CREATE ROLE {outside} LOGIN")
    pg_server.admin(f"CREATE ROLE {nologin} NOLOGIN IN ROLE rflow_people")
    for name, who, recorded in ((unrecorded, desk.coverage, False), (outside, desk.admin, True), (nologin, shy, True)):
        await db.exec(text('UPDATE "user" SET db_role = :r WHERE id = :id'), params={"r": name, "id": who.id})
        if recorded:
            await db.exec(
                text("INSERT INTO account_db_role (role_name, account_id) VALUES (:r, :a)"),
                params={"r": name, "a": desk.owner.account_id},
            )
    await db.commit()
    assert await rflow("--db", owner_url, "users", "list") == 0
    lines = capsys.readouterr().out.splitlines()

    def problem_of(email: str) -> str | None:
        at = next(i for i, line in enumerate(lines) if line.startswith(email))
        following = lines[at + 1] if at + 1 < len(lines) else ""
        marked = lines[at].rstrip().endswith("cannot-log-in")
        assert marked == following.startswith("    ! "), lines[at]
        return following.strip() if marked else None

    assert problem_of(desk.owner.email) is None and problem_of(desk.tech.email) is None
    assert f"database role {never_made} was never made" in problem_of(desk.engineer.email)
    assert f"rflow users bind {desk.engineer.email} --db-role {never_made}" in problem_of(desk.engineer.email)
    assert f"rflow users bind {late.email} --db-role late" in problem_of(late.email)
    assert f"database role {unrecorded} was not made for this account" in problem_of(desk.coverage.email)
    assert f"GRANT rflow_people TO {outside}" in problem_of(desk.admin.email)
    assert f"ALTER ROLE {nologin} LOGIN" in problem_of(shy.email)


async def test_a_helpful_ai_build_or_proposal_walk_ends_on_a_techs_own_role(db_url, db, desk):
    """The flywheel's proposal, and a walked proposal marked validated, are written on the tech's role."""
    from tests.test_sessions_lifecycle import walked_ai_session

    built = await walked_ai_session(db, desk)
    walked = FlowProposal(account_id=desk.tech.account_id, title="p", proposed_flow_data={"tree_structure": {}})
    db.add(walked)
    await db.commit()
    on_proposal = await walk_start.start_proposal_session(db, actor=desk.tech, ticket_id="T-2", proposal_id=walked.id)
    url = await person(db, db_url, desk.owner, desk.tech)
    conn = await asyncpg.connect(url)
    try:  # ending one's walk on it helpful does not let one rewrite the proposal
        with pytest.raises(REFUSED):
            async with conn.transaction():
                await conn.execute(
                    "UPDATE l1_walk_session SET status = 'resolved', helpful = true WHERE id = $1", on_proposal.id
                )
                await conn.execute(
                    "UPDATE flowproposal SET validated_by_outcome = true, "
                    'proposed_flow_data = \'{"tree_structure": {"text": "Disable Defender"}}\' WHERE id = $1',
                    walked.id,
                )
        assert await conn.execute("UPDATE flowproposal SET validated_by_outcome = true") == "UPDATE 0"  # no walk
    finally:
        await conn.close()
    ctx = await as_person(url)
    try:
        async with ctx.open_db() as tdb:
            for walk, notes in ((built, "Safe mode fixed it"), (on_proposal, "worked")):
                await walk_endings.resolve(
                    tdb, actor=ctx.user, session_id=walk.id, helpful=True, resolution_notes=notes
                )
    finally:
        await ctx.engine.dispose()
    proposals = {p.id: p for p in await db.exec(select(FlowProposal).execution_options(populate_existing=True))}
    assert proposals[walked.id].validated_by_outcome is True
    assert proposals[walked.id].proposed_flow_data == {"tree_structure": {}}
    [captured] = [p for p in proposals.values() if p.source_session_id == built.id]
    assert (captured.source, captured.title, captured.validated_by_outcome) == (
        "ai_realtime_l1",
        "Safe mode fixed it",
        True,
    )


async def test_a_psa_pull_on_a_techs_own_role_brings_in_changes_and_closes_what_left(db_url, db, desk):
    """A PSA ticket's status on the desk mirrors the PSA: a pull on the tech's role opens and resolves."""
    from rflow_tui.services import psa_pull
    from tests.fake_psa import FakeConnectWise, connectwise_adapter

    api = FakeConnectWise()
    for n in (101, 102, 103):
        api.add_ticket(n, f"Printer {n} offline")
    adapter = connectwise_adapter(api, timeout_seconds=2)
    ctx = await as_person(await person(db, db_url, desk.owner, desk.tech))
    try:
        async with ctx.open_db() as tdb:
            assert (await psa_pull.pull(tdb, actor=ctx.user, adapter=adapter)).new == 3
            api.change_ticket(101, summary="Printer 101 offline again")
            api.change_ticket(102, closedFlag=True)
            api.delete_ticket(103)
            report = await psa_pull.pull(tdb, actor=ctx.user, adapter=adapter)
            assert (report.updated, report.closed) == (1, 2)
            api.change_ticket(102, closedFlag=False)
            assert (await psa_pull.pull(tdb, actor=ctx.user, adapter=adapter)).updated == 1
    finally:
        await ctx.engine.dispose()
        await adapter.aclose()
        api.close()
    after = {k: v[0] for k, v in (await statuses(db, desk.owner.account_id)).items() if v[2] == "psa"}
    assert after == {"101": "open", "102": "open", "103": "resolved"}


async def test_engineers_and_admins_do_their_work_on_their_own_roles(db_url, db, desk):
    """An engineer approves a proposal, reopens a closed escalation and reads their inbox; an admin
    changes a tech's role back and forth: the rules above refuse none of it."""
    from rflow_tui.services import escalations as esc
    from rflow_tui.services import notifications, proposals
    from rflow_tui.services.users import update_user
    from tests.test_proposals import captured_proposal

    proposal = await captured_proposal(db, desk)
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-2")
    await walk_endings.escalate(db, actor=desk.tech, session_id=walk.id, reason="fuser", reason_category="hardware")
    engineer = await as_person(await person(db, db_url, desk.owner, desk.engineer))
    try:
        async with engineer.open_db() as edb:
            me = engineer.user
            flow = await proposals.approve(edb, actor=me, proposal_id=proposal.id, title="Local account sign-in")
            await esc.close(edb, actor=me, session_id=walk.id, outcome="fixed", notes="new fuser")
            await esc.reopen(edb, actor=me, session_id=walk.id)
            assert await notifications.mark_read(edb, actor=me) >= 1
    finally:
        await engineer.engine.dispose()
    admin = await as_person(await person(db, db_url, desk.owner, desk.admin))
    try:
        async with admin.open_db() as adb:
            await update_user(adb, actor=admin.user, email=desk.tech.email, role="engineer")
            await update_user(adb, actor=admin.user, email=desk.tech.email, role="l1_tech")
    finally:
        await admin.engine.dispose()
    assert (await unchanged(db, FlowProposal, proposal.id)).status == "approved" and flow.id
    assert (await unchanged(db, L1WalkSession, walk.id)).closed_at is None
    assert (await statuses(db, desk.owner.account_id))["T-2"][0] == "escalated"
    assert await notifications.unread_count(db, actor=desk.engineer) == 0


async def test_only_an_owner_makes_changes_or_unmakes_an_owner_and_owners_do_not_walk(db_url, db, desk):
    owner = await asyncpg.connect(await person(db, db_url, desk.owner, desk.owner))
    admin = await asyncpg.connect(await person(db, db_url, desk.owner, desk.admin))
    try:
        await refused(
            admin,
            ("UPDATE \"user\" SET account_role = 'owner' WHERE id = $1", desk.admin.id),
            (
                'INSERT INTO "user" (account_id, email, name, account_role, coverage, is_active, created_at) '
                "VALUES ($1, 'second-owner@contoso.test', '', 'owner', false, true, now())",
                desk.admin.account_id,
            ),
        )
        assert await admin.execute('UPDATE "user" SET is_active = false WHERE id = $1', desk.owner.id) == "UPDATE 0"
        await refused(owner, (WALK_INSERT, desk.owner.account_id, "T-2", "active"))  # owners do not walk
    finally:
        await owner.close()
        await admin.close()
    assert (await unchanged(db, type(desk.admin), desk.admin.id)).account_role == "admin"
    assert (await unchanged(db, type(desk.owner), desk.owner.id)).is_active
    assert len(list(await db.exec(select(L1WalkSession)))) == 0
