"""The shared PostgreSQL is the boundary, third battery (migration 0014 and the hostile review
after 0013): what a person's role writes for others to act on (a PSA note's status, an alert
to the engineers, an escalation notification, a flow, a review) says what the database says,
not what the writer chose. Each attempt is refused, the genuine row beside it is accepted,
and nothing forged is left behind.
"""

from __future__ import annotations

import json

import asyncpg
import pytest
from sqlmodel import select

from rflow_tui.models import (
    AlertOutboxItem,
    Flow,
    FlowProposal,
    L1WalkSession,
    Notification,
    PsaOutboxItem,
    Ticket,
)
from rflow_tui.services import audit
from rflow_tui.services.library import import_flow_doc
from rflow_tui.services.walks import endings as walk_endings
from rflow_tui.services.walks import start as walk_start
from tests.conftest import make_desk
from tests.test_db_boundary import REFUSED, as_person, unchanged
from tests.test_identity import person
from tests.tui_support import SMALL_FLOW

pytestmark = pytest.mark.postgres_only

BORN_ESCALATED = """INSERT INTO l1_walk_session (account_id, created_by_user_id, ticket_id, ticket_kind, session_kind,
    status, walk_notes, created_at, last_step_at, step_count, version, escalation_reason, escalation_reason_category)
    VALUES ($1, rflow_session_user_id(), $2, 'psa', 'adhoc', 'escalated', '[]', now(), now(), 0, 1, 'paper jam',
    'hardware') RETURNING id"""
PSA_ROW = """INSERT INTO psa_outbox (account_id, session_id, psa_system, ticket_id, outcome, note, idempotency_key,
    state, attempts, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, 'the walk', 'k1', 'pending', 0, now(),
    now())"""
ALERT_ROW = """INSERT INTO alert_outbox (account_id, session_id, ticket_id, reason_category, priority, facts,
    idempotency_key, state, attempts, next_attempt_at, sent_to, created_at)
    VALUES ($1, $2, $3, $4, $5, $6::json, 'k2', 'pending', 0, now(), '{}', now())"""
NOTE_ROW = """INSERT INTO notification (account_id, recipient_user_id, kind, payload, created_at)
    VALUES ($1, $2, 'l1.session.escalated', $3::json, now())"""


async def psa_ticket(db, desk, ticket_id, subject, system, priority, url) -> None:
    """A ticket as ``rflow psa pull`` brings it in: a priority and a link back."""
    db.add(
        Ticket(
            account_id=desk.owner.account_id,
            ticket_id=ticket_id,
            subject=subject,
            body="",
            ticket_kind="psa",
            psa_system=system,
            priority=priority,
            psa_url=url,
        )
    )
    await db.commit()


async def refused_in_savepoints(conn, *statements: tuple) -> None:
    """Each statement is refused, in a savepoint of the open transaction (which it leaves usable)."""
    for statement, *args in statements:
        with pytest.raises(REFUSED):
            async with conn.transaction():
                await conn.execute(statement, *args)


async def test_an_escalation_on_a_techs_role_queues_only_what_the_walk_its_ticket_and_its_writer_say(db_url, db, desk):
    """In the very transaction that escalates their own walk, a tech may not queue a PSA row
    that would close the ticket (outcome resolved) or go to another PSA, an alert with a
    priority, category, subject, sender, link or extra field of their choosing, nor a
    notification naming another ticket, category or escalating person, or sent to a tech.
    The rows the app writes are accepted in the same transaction."""
    other = await make_desk(db, "Fabrikam", "fabrikam.test")
    await psa_ticket(db, desk, "777", "Printer jams", "connectwise", "P4", "https://psa.example/777")
    acct = desk.tech.account_id
    conn = await asyncpg.connect(await person(db, db_url, desk.owner, desk.tech))
    try:
        async with conn.transaction():
            walk = await conn.fetchval(BORN_ESCALATED, acct, "777")
            facts = {
                "ticket_id": "777",
                "subject": "Printer jams",
                "priority": "P4",
                "reason_category": "hardware",
                "reason": "paper jam",
                "escalated_by": desk.tech.name,
                "link": "https://psa.example/777",
                "notes": ["tray 2"],
            }

            def forged(**change) -> str:
                return json.dumps({**facts, **change})

            note = {
                "session_id": walk,
                "ticket_id": "777",
                "problem_summary": "Printer jams",
                "reason_category": "hardware",
                "escalated_by_user_id": desk.tech.id,
            }
            await refused_in_savepoints(
                conn,
                (PSA_ROW, acct, walk, "connectwise", "777", "resolved"),  # would close the PSA's ticket
                (PSA_ROW, acct, walk, "autotask", "777", "escalated"),  # another PSA than the ticket's
                (ALERT_ROW, acct, walk, "777", "hardware", "P1", forged(priority="P1")),
                (ALERT_ROW, acct, walk, "777", "hardware", "P4", forged(priority="P1")),
                (ALERT_ROW, acct, walk, "777", "security", "P4", forged(reason_category="security")),
                (ALERT_ROW, acct, walk, "777", "hardware", "P4", forged(subject="CEO laptop stolen")),
                (ALERT_ROW, acct, walk, "777", "hardware", "P4", forged(escalated_by=desk.owner.name)),
                (ALERT_ROW, acct, walk, "777", "hardware", "P4", forged(link="https://evil.example/login")),
                (ALERT_ROW, acct, walk, "777", "hardware", "P4", forged(reason="call 555-0100")),
                (ALERT_ROW, acct, walk, "777", "hardware", "P4", forged(mention="@channel")),
                (ALERT_ROW, acct, walk, "777", "hardware", "P4", forged(notes=[{"text": "x"}])),
                (NOTE_ROW, acct, desk.engineer.id, json.dumps({**note, "ticket_id": "T-1"})),
                (NOTE_ROW, acct, desk.engineer.id, json.dumps({**note, "reason_category": "security"})),
                (NOTE_ROW, acct, desk.engineer.id, json.dumps({**note, "escalated_by_user_id": desk.owner.id})),
                (NOTE_ROW, acct, desk.engineer.id, json.dumps({**note, "link": "https://evil.example"})),
                (NOTE_ROW, acct, other.engineer.id, json.dumps(note)),  # another account's engineer
                (NOTE_ROW, acct, desk.tech.id, json.dumps(note)),  # a tech's inbox is not the engineers'
            )
            await conn.execute(PSA_ROW, acct, walk, "connectwise", "777", "escalated")
            await conn.execute(ALERT_ROW, acct, walk, "777", "hardware", "P4", json.dumps(facts))
            await conn.execute(NOTE_ROW, acct, desk.engineer.id, json.dumps(note))
            await conn.execute(NOTE_ROW, acct, None, json.dumps({**note, "fallback": "owner_admin"}))
    finally:
        await conn.close()
    [psa] = list(await db.exec(select(PsaOutboxItem)))
    assert (psa.outcome, psa.psa_system) == ("escalated", "connectwise")
    [alert] = list(await db.exec(select(AlertOutboxItem)))
    assert (alert.priority, alert.reason_category, alert.facts) == ("P4", "hardware", facts)
    notes = list(await db.exec(select(Notification)))
    assert sorted((n.recipient_user_id or 0) for n in notes) == [0, desk.engineer.id]


async def test_the_apps_escalation_on_a_nameless_engineers_coverage_role_is_accepted(db_url, db, desk):
    """The genuine rows, as enqueue_escalation writes them for someone with no name (the alert
    names them by email): the rules above refuse nothing the app does."""
    await psa_ticket(db, desk, "778", "VPN", "cw", "P2", None)
    ctx = await as_person(await person(db, db_url, desk.owner, desk.coverage))
    try:
        async with ctx.open_db() as cdb:
            walk = await walk_start.start_adhoc_session(cdb, actor=ctx.user, ticket_id="778", ticket_kind="psa")
            await walk_endings.escalate(cdb, actor=ctx.user, session_id=walk.id, reason="r", reason_category="other")
    finally:
        await ctx.engine.dispose()
    [alert] = list(await db.exec(select(AlertOutboxItem)))
    assert alert.facts["escalated_by"] == desk.coverage.email and alert.priority == "P2"
    assert [p.outcome for p in await db.exec(select(PsaOutboxItem))] == ["escalated"]
    assert (await audit.verify(db, actor=desk.owner)).intact


async def test_a_walk_names_only_a_flow_and_a_proposal_of_its_own_account(db_url, db, desk):
    other = await make_desk(db, "Fabrikam", "fabrikam.test")
    theirs = await import_flow_doc(db, actor=other.owner, doc=SMALL_FLOW, source="test")
    mine = await import_flow_doc(db, actor=desk.owner, doc=SMALL_FLOW, source="test")
    their_proposal = FlowProposal(account_id=other.owner.account_id, title="p", proposed_flow_data={})
    db.add(their_proposal)
    await db.commit()
    walk = """INSERT INTO l1_walk_session (account_id, created_by_user_id, ticket_id, ticket_kind, session_kind,
        status, walk_notes, created_at, last_step_at, step_count, version, flow_id, flow_proposal_id)
        VALUES ($1, rflow_session_user_id(), 'T-1', 'internal', $2, 'active', '[]', now(), now(), 0, 1, $3, $4)"""
    acct = desk.tech.account_id
    conn = await asyncpg.connect(await person(db, db_url, desk.owner, desk.tech))
    try:
        async with conn.transaction():
            await refused_in_savepoints(
                conn,
                (walk, acct, "flow", theirs.id, None),
                (walk, acct, "proposal", None, their_proposal.id),
            )
            await conn.execute(walk, acct, "flow", mine.id, None)
    finally:
        await conn.close()
    assert [w.flow_id for w in await db.exec(select(L1WalkSession))] == [mine.id]


async def test_flows_and_reviews_are_signed_by_whoever_writes_them_and_a_version_is_never_rewritten(db_url, db, desk):
    """An engineer may import flows and review proposals, in their own name: not a flow
    attributed to the owner, not a review signed by someone else, not an imported version
    rewritten in place (unaudited, beside the version number the audit trail recorded), not
    a proposal's content changed after a walk validated it."""
    flow = await import_flow_doc(db, actor=desk.owner, doc=SMALL_FLOW, source="test")
    proposal = FlowProposal(
        account_id=desk.owner.account_id,
        title="p",
        proposed_flow_data={"tree_structure": {}},
        validated_by_outcome=True,
    )
    db.add(proposal)
    await db.commit()
    insert = """INSERT INTO flow (account_id, slug, version, title, category, flow_data, is_current, created_at,
        created_by_user_id, match_keywords) VALUES ($1, 'forged', 1, 'F', '', '{}', false, now(), $2, '[]')"""
    acct = desk.engineer.account_id
    conn = await asyncpg.connect(await person(db, db_url, desk.owner, desk.engineer))
    try:
        async with conn.transaction():
            await refused_in_savepoints(
                conn,
                (insert, acct, desk.owner.id),
                ('UPDATE flow SET flow_data = \'{"title": "Disable Defender"}\' WHERE id = $1', flow.id),
                ("UPDATE flow SET created_by_user_id = $1 WHERE id = $2", desk.engineer.id, flow.id),
                ("UPDATE flowproposal SET proposed_flow_data = '{\"x\": 1}' WHERE id = $1", proposal.id),
                (
                    "UPDATE flowproposal SET status = 'rejected', reviewed_by_user_id = $1, reviewed_at = now() "
                    "WHERE id = $2",
                    desk.owner.id,
                    proposal.id,
                ),
            )
            await conn.execute(insert, acct, desk.engineer.id)
            assert (
                await conn.execute(
                    "UPDATE flowproposal SET status = 'rejected', reviewed_by_user_id = rflow_session_user_id(), "
                    "reviewed_at = now(), review_reason = 'no' WHERE id = $1",
                    proposal.id,
                )
                == "UPDATE 1"
            )
            assert await conn.execute("UPDATE flow SET is_current = false WHERE id = $1", flow.id) == "UPDATE 1"
    finally:
        await conn.close()
    kept = await unchanged(db, Flow, flow.id)
    assert (kept.flow_data, kept.created_by_user_id) == (flow.flow_data, desk.owner.id)
    reviewed = await unchanged(db, FlowProposal, proposal.id)
    assert (reviewed.reviewed_by_user_id, reviewed.proposed_flow_data) == (desk.engineer.id, {"tree_structure": {}})
    forged = (await db.exec(select(Flow).where(Flow.slug == "forged"))).one()
    assert forged.created_by_user_id == desk.engineer.id


async def test_what_else_a_hostile_tech_tried_after_0013_holds(db_url, db, desk, pg_server):
    """The strongest of the review's attempts that held: the people group's own role, other
    accounts' rows by prepared statement, upsert, row locks or a leaky function, other people's
    backends, another account's audit chain, the audit head's lock, a role setting of one's own."""
    other = await make_desk(db, "Fabrikam", "fabrikam.test")
    theirs = await asyncpg.connect(await person(db, db_url, other.owner, other.tech))
    url = await person(db, db_url, desk.owner, desk.tech)
    conn = await asyncpg.connect(url)
    mine, their_account = desk.tech.account_id, other.owner.account_id
    their_ticket = await theirs.fetchval("SELECT id FROM ticket WHERE ticket_id = 'T-1'")
    try:
        await conn.execute("SET ROLE rflow_people")  # the group itself is no one, and sees as the person
        assert {r[0] for r in await conn.fetch("SELECT DISTINCT account_id FROM ticket")} == {mine}
        await conn.execute("RESET ROLE")
        await conn.execute("PREPARE other_account(int) AS SELECT count(*) FROM ticket WHERE account_id = $1")
        assert await conn.fetchval(f"EXECUTE other_account({their_account})") == 0
        await conn.execute(
            "CREATE FUNCTION pg_temp.leak(text) RETURNS bool LANGUAGE sql COST 0.0000001 AS 'SELECT true'"
        )
        leaked = await conn.fetch("SELECT account_id FROM ticket WHERE pg_temp.leak(subject)")
        assert {r[0] for r in leaked} == {mine}
        async with conn.transaction():
            assert await conn.fetch("SELECT id FROM ticket WHERE account_id = $1 FOR UPDATE", their_account) == []
        upsert = """INSERT INTO ticket (id, account_id, ticket_id, ticket_kind, subject, body, requester, category,
            status, created_at, updated_at, priority) VALUES ($1, $2, 'Z-1', 'internal', 's', '', '', '', 'open',
            now(), now(), '') ON CONFLICT (id) DO UPDATE SET subject = 'pwned'"""
        await refused_in_savepoints(
            conn,
            (upsert, their_ticket, mine),
            ("SELECT * FROM rflow_audit_append($1, $2, 'user.set_role', 'user', '1', '{}')", their_account, 1),
            ("SELECT * FROM audit_head FOR UPDATE",),
            ("SELECT nextval('audit_log_id_seq')",),
            (
                "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE usename = $1",
                await theirs.fetchval("SELECT session_user"),
            ),
            (
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
                await theirs.fetchval("SELECT session_user"),
            ),
        )
        await refused_in_savepoints(
            conn,
            ("ALTER ROLE CURRENT_USER CREATEDB",),
            ("ALTER ROLE CURRENT_USER CONNECTION LIMIT 1000",),
            ("COMMENT ON TABLE ticket IS 'pwned'",),
            ("CLUSTER ticket",),
        )
        await conn.execute(  # a DO block is the person, as any statement is
            f"DO $$ BEGIN UPDATE ticket SET subject = 'pwned' WHERE account_id = {their_account}; END $$"
        )
        # pg_temp is never searched for functions: the audit writer hashes with the real sha256.
        await conn.execute(
            "CREATE FUNCTION pg_temp.sha256(bytea) RETURNS bytea LANGUAGE sql AS $$SELECT '\\x00'::bytea$$"
        )
        await conn.execute("SET search_path = pg_temp, public")
        await conn.fetch("SELECT * FROM rflow_audit_append($1, NULL, 'ticket.note', 'ticket', 'T-1', '{}')", mine)
        await conn.execute("RESET search_path")
        # A role setting of one's own (allowed: it is only one's own sessions) redirects nothing.
        await conn.execute("ALTER ROLE CURRENT_USER SET search_path = pg_temp, public")
    finally:
        await conn.close()
    again = await asyncpg.connect(url)
    try:
        await again.execute('CREATE TEMP TABLE "user" (LIKE public."user" INCLUDING DEFAULTS)')
        assert await again.fetchval("SHOW search_path") == "pg_temp, public"
        assert await again.fetchval("SELECT rflow_session_account()") == mine
        assert {r[0] for r in await again.fetch("SELECT DISTINCT account_id FROM public.ticket")} == {mine}
    finally:
        await again.close()
    assert await theirs.fetchval("SELECT 1") == 1  # their session was neither cancelled nor ended
    subject = await theirs.fetchval("SELECT subject FROM ticket WHERE id = $1", their_ticket)
    await theirs.close()
    assert subject != "pwned"
    assert (await audit.verify(db, actor=other.owner)).intact
    assert (await audit.verify(db, actor=desk.owner)).intact  # the entry written beside a fake sha256
