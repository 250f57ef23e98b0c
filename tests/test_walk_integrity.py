"""Issue 9, parts 2, 3 and 9: rights read fresh, one active walk per ticket, walk integrity.

Every test here failed on the code before these rules: the user loaded at sign-in
was trusted for the whole run, a ticket could carry two active walks, a stale
window could answer after a step back, and a reused model id could answer a new
question.
"""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from rflow_tui.flows.check import check_flow
from rflow_tui.flows.format import node_by_id
from rflow_tui.models import AuditLog, FlowProposal, L1WalkSession, Ticket
from rflow_tui.services import tickets
from rflow_tui.services.errors import (
    AccessDenied,
    InvalidState,
    RightsChanged,
    StaleWalk,
    WalkInProgress,
)
from rflow_tui.services.users import update_user
from rflow_tui.services.walks import ai_steps
from rflow_tui.services.walks import endings as walk_endings
from rflow_tui.services.walks import flow_steps as flow_steps
from rflow_tui.services.walks import reads as walk_reads
from rflow_tui.services.walks import start as walk_start
from rflow_tui.services.walks import steps as walk_steps
from tests.fakes import ScriptedGenerator
from tests.test_flow_walk import start_walk
from tests.walk_paths import path_of, steps_of

QUESTION = {"id": "q", "type": "question", "text": "Does Outlook open in safe mode?"}
RESTART = {"id": "i-restart", "type": "instruction", "text": "Restart the laptop."}
FIXED = {"id": "r-addin", "type": "resolution", "text": "Disable the PDF add-in in Outlook's COM add-ins list."}


async def reload(db, walk_id: int) -> L1WalkSession:
    db.expire_all()
    return await db.get(L1WalkSession, walk_id)


async def ai_walk(db, desk, *nodes, actor=None, ticket="T-1"):
    walk = await walk_start.start_ai_build_session(
        db, actor=actor or desk.tech, ticket_id=ticket, category="email", problem_text="Outlook will not open"
    )
    gen = ScriptedGenerator(*nodes)
    node = await ai_steps.advance_ai_build(db, actor=actor or desk.tech, session_id=walk.id, generator=gen, judge=None)
    return walk, gen, node


# --- part 2: rights read fresh --------------------------------------------------------


async def test_a_tech_deactivated_mid_walk_can_neither_step_nor_note_nor_end_the_walk(db, desk):
    walk = await start_walk(db, desk)
    ai, gen, node = await ai_walk(db, desk, QUESTION, RESTART, ticket="T-2")
    await update_user(db, actor=desk.owner, email=desk.tech.email, active=False)
    before = (await path_of(db, await reload(db, walk.id))), (await path_of(db, await reload(db, ai.id)))

    attempts = [
        flow_steps.answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer="no"),
        flow_steps.step_back(db, actor=desk.tech, session_id=walk.id),
        ai_steps.advance_ai_build(
            db, actor=desk.tech, session_id=ai.id, generator=gen, judge=None, token=node["token"], answer="yes"
        ),
        walk_steps.update_notes(db, actor=desk.tech, session_id=walk.id, notes=["x"]),
        walk_endings.escalate(db, actor=desk.tech, session_id=walk.id, reason="r", reason_category="other"),
        walk_endings.resolve(db, actor=desk.tech, session_id=walk.id, helpful=True, resolution_notes="r"),
        walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-3"),
        walk_endings.escalate_without_walk(db, actor=desk.tech, ticket_id="T-3", reason="r", reason_category="other"),
    ]
    for attempt in attempts:
        with pytest.raises(RightsChanged, match="deactivated") as refused:
            await attempt
        assert "changed while rflow was open" in str(refused.value)
        assert refused.value.user.is_active is False  # the fresh rights, for the app to route on
    assert ((await path_of(db, await reload(db, walk.id))), (await path_of(db, await reload(db, ai.id)))) == before
    assert {w.status for w in await db.exec(select(L1WalkSession))} == {"active"}
    assert len(gen.calls) == 1


async def test_an_engineer_whose_coverage_was_revoked_cannot_walk_but_still_sees_escalations(db, desk):
    walk = await start_walk(db, desk)
    await walk_start.take_over(db, actor=desk.coverage, session_id=walk.id)
    await update_user(db, actor=desk.owner, email=desk.coverage.email, coverage=False)
    with pytest.raises(RightsChanged, match="without L1 coverage"):
        await flow_steps.answer_flow_node(db, actor=desk.coverage, session_id=walk.id, answer="no")
    with pytest.raises(RightsChanged, match="without L1 coverage"):
        await walk_reads.active_sessions_for(db, actor=desk.coverage)
    assert await walk_reads.list_escalations(db, actor=desk.coverage) == []
    assert (await path_of(db, await reload(db, walk.id))) == []


async def test_a_user_who_never_had_the_right_gets_a_plain_refusal(db, desk):
    with pytest.raises(AccessDenied) as refused:
        await walk_start.start_adhoc_session(db, actor=desk.engineer, ticket_id="T-1")
    assert not isinstance(refused.value, RightsChanged)


async def test_a_reactivated_tech_walks_again(db, desk):
    walk = await start_walk(db, desk)
    await update_user(db, actor=desk.owner, email=desk.tech.email, active=False)
    await update_user(db, actor=desk.owner, email=desk.tech.email, active=True)
    node = await flow_steps.answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer="no")
    assert node["id"] == "local"


# --- part 3: one active walk per ticket -----------------------------------------------


async def test_a_second_walk_on_a_ticket_is_refused_and_points_at_the_first(db, desk):
    first = await start_walk(db, desk)
    with pytest.raises(WalkInProgress, match=r"your unfinished walk \(Flow\)") as mine:
        await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")
    assert (mine.value.session_id, mine.value.yours) == (first.id, True)
    with pytest.raises(WalkInProgress, match=r"Tina Tech's unfinished walk \(Flow\): .*take it over") as theirs:
        await walk_start.start_ai_build_session(
            db, actor=desk.coverage, ticket_id="T-1", category="email", problem_text="Outlook"
        )
    assert (theirs.value.session_id, theirs.value.yours, theirs.value.owner_user_id) == (first.id, False, desk.tech.id)
    walks = list(await db.exec(select(L1WalkSession)))
    assert [(w.id, w.status) for w in walks] == [(first.id, "active")]


async def test_taking_over_a_walk_moves_it_to_the_new_tech_and_is_audited(db, desk):
    walk = await start_walk(db, desk)
    await flow_steps.answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer="no", note="laptop")
    taken = await walk_start.take_over(db, actor=desk.coverage, session_id=walk.id)
    assert (taken.created_by_user_id, taken.acting_as) == (desk.coverage.id, "l1_coverage")
    assert [s.node_id for s in (await steps_of(db, await reload(db, walk.id)))] == ["kind"]
    [entry] = await db.exec(select(AuditLog).where(AuditLog.action == "l1.session.take_over"))
    assert (entry.actor_user_id, entry.details["from_user_id"]) == (desk.coverage.id, desk.tech.id)
    assert [w.id for w in await walk_reads.active_sessions_for(db, actor=desk.coverage)] == [walk.id]
    assert await walk_reads.active_sessions_for(db, actor=desk.tech) == []


async def test_the_store_itself_refuses_a_second_active_walk_on_a_ticket(db, desk):
    """The partial unique index backs the rule where two processes race past the check."""
    first = await start_walk(db, desk)
    db.add(
        L1WalkSession(
            account_id=first.account_id,
            created_by_user_id=desk.coverage.id,
            ticket_id="T-1",
            ticket_kind="internal",
            session_kind="adhoc",
            walk_notes=[],
        )
    )
    with pytest.raises(IntegrityError):
        await db.commit()
    await db.rollback()
    # Closed walks do not count: a new walk after the first one ends is fine.
    await walk_endings.escalate(db, actor=desk.tech, session_id=first.id, reason="r", reason_category="other")
    await tickets.reopen_ticket(db, actor=desk.tech, ticket_id="T-1")
    again = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")
    assert again.status == "active"


async def test_escalating_without_a_walk_never_flips_a_resolved_ticket(db, desk):
    walk = await start_walk(db, desk)
    await walk_endings.resolve(db, actor=desk.tech, session_id=walk.id, helpful=True, resolution_notes="Reset it")
    with pytest.raises(InvalidState, match="T-1 is resolved; reopen it"):
        await walk_endings.escalate_without_walk(
            db, actor=desk.tech, ticket_id="T-1", reason="r", reason_category="other"
        )
    ticket = (await db.exec(select(Ticket).where(Ticket.ticket_id == "T-1"))).one()
    assert (ticket.status, ticket.resolution_notes) == ("resolved", "Reset it")

    await tickets.reopen_ticket(db, actor=desk.tech, ticket_id="T-1")
    escalated = await walk_endings.escalate_without_walk(
        db, actor=desk.tech, ticket_id="T-1", reason="needs a new disk", reason_category="hardware"
    )
    assert escalated.status == "escalated"
    [reopened] = await db.exec(select(AuditLog).where(AuditLog.action == "ticket.reopen"))
    assert reopened.details == {"previous_status": "resolved"}


async def test_escalating_without_a_walk_is_refused_while_a_walk_is_active(db, desk):
    walk = await start_walk(db, desk)
    with pytest.raises(WalkInProgress, match="escalate that walk instead"):
        await walk_endings.escalate_without_walk(
            db, actor=desk.tech, ticket_id="T-1", reason="r", reason_category="other"
        )
    assert (await db.exec(select(Ticket).where(Ticket.ticket_id == "T-1"))).one().status == "in_progress"
    assert (await reload(db, walk.id)).status == "active"


async def test_a_walk_whose_ticket_was_closed_meanwhile_cannot_close_it_again(db, desk):
    walk = await start_walk(db, desk)
    ticket = (await db.exec(select(Ticket).where(Ticket.ticket_id == "T-1"))).one()
    ticket.status, ticket.resolution_notes = "resolved", "closed by someone else"
    db.add(ticket)
    await db.commit()
    for end in (
        walk_endings.escalate(db, actor=desk.tech, session_id=walk.id, reason="r", reason_category="other"),
        walk_endings.resolve(db, actor=desk.tech, session_id=walk.id, helpful=True, resolution_notes="mine"),
    ):
        with pytest.raises(InvalidState, match="reopen it"):
            await end
    db.expire_all()
    ticket = (await db.exec(select(Ticket).where(Ticket.ticket_id == "T-1"))).one()
    assert (ticket.status, ticket.resolution_notes) == ("resolved", "closed by someone else")
    assert (await reload(db, walk.id)).status == "active"


async def test_reopening_refuses_an_open_ticket(db, desk):
    with pytest.raises(InvalidState, match="already open"):
        await tickets.reopen_ticket(db, actor=desk.tech, ticket_id="T-1")


# --- part 9: walk integrity -------------------------------------------------------------


async def test_a_helpful_ai_walks_proposal_ends_in_the_fix_the_ai_served(db, desk):
    walk, gen, node = await ai_walk(db, desk, QUESTION, FIXED)
    served = await ai_steps.advance_ai_build(
        db, actor=desk.tech, session_id=walk.id, generator=gen, judge=None, token=node["token"], answer="yes"
    )
    assert served["type"] == "resolution"
    await walk_endings.resolve(db, actor=desk.tech, session_id=walk.id, helpful=True, resolution_notes="Add-in off")
    [proposal] = await db.exec(select(FlowProposal))
    tree = proposal.proposed_flow_data["tree_structure"]
    assert check_flow(tree) == []
    assert node_by_id(tree, "q")["yes"] == "r-addin"
    assert node_by_id(tree, "r-addin") == {"id": "r-addin", "type": "resolution", "text": FIXED["text"], "origin": "ai"}
    assert "Resolved: confirm with the user and close." not in {n["text"] for n in tree["nodes"]}


async def test_a_step_back_in_another_window_makes_a_stale_answer_refused(db, desk):
    walk = await start_walk(db, desk)
    await flow_steps.answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer="no")
    await flow_steps.answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer=None)
    seen = (await reload(db, walk.id)).version  # window A shows "works"

    # Window B answers "works", then steps back to it: the walk is on "works" again.
    await flow_steps.answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer="no", node_id="works")
    back = await flow_steps.step_back(db, actor=desk.tech, session_id=walk.id)
    assert back["id"] == "works"

    with pytest.raises(StaleWalk, match="moved on in another window"):
        await flow_steps.answer_flow_node(
            db, actor=desk.tech, session_id=walk.id, answer="yes", node_id="works", version=seen
        )
    with pytest.raises(StaleWalk):
        await flow_steps.step_back(db, actor=desk.tech, session_id=walk.id, version=seen)
    stored = await reload(db, walk.id)
    assert [(s.node_id, s.answer, s.undone) for s in (await steps_of(db, stored))] == [
        ("kind", "no", False),
        ("local", None, False),
        ("works", "no", True),
    ]
    # The window that reloaded answers with the version it now sees.
    await flow_steps.answer_flow_node(
        db, actor=desk.tech, session_id=walk.id, answer="yes", node_id="works", version=stored.version
    )


async def test_a_reused_model_node_id_cannot_let_a_stale_window_answer_the_new_question(db, desk):
    reused = {"id": "q", "type": "question", "text": "Does it open after the restart?"}
    walk, gen, first = await ai_walk(db, desk, QUESTION, reused, RESTART)
    # Window A answers; the model serves its next question under the same id.
    second = await ai_steps.advance_ai_build(
        db,
        actor=desk.tech,
        session_id=walk.id,
        generator=gen,
        judge=None,
        node_id="q",
        token=first["token"],
        answer="yes",
    )
    assert second["id"] == first["id"] and second["token"] != first["token"]
    # Window B still shows the first question and answers it.
    with pytest.raises(StaleWalk, match="not the question waiting"):
        await ai_steps.advance_ai_build(
            db,
            actor=desk.tech,
            session_id=walk.id,
            generator=gen,
            judge=None,
            node_id="q",
            token=first["token"],
            answer="no",
        )
    stored = await reload(db, walk.id)
    assert [(s.text, s.answer) for s in (await steps_of(db, stored))] == [(QUESTION["text"], "yes")]
    assert stored.pending_node == second and len(gen.calls) == 2


async def test_an_answer_without_the_served_token_is_refused(db, desk):
    walk, gen, _node = await ai_walk(db, desk, QUESTION, RESTART)
    with pytest.raises(Exception, match="token"):
        await ai_steps.advance_ai_build(
            db, actor=desk.tech, session_id=walk.id, generator=gen, judge=None, node_id="q", answer="yes"
        )
    assert (await path_of(db, await reload(db, walk.id))) == []


async def test_a_node_served_before_tokens_gets_one_when_it_is_shown_again(db, desk):
    walk, gen, node = await ai_walk(db, desk, QUESTION, RESTART)
    stored = await reload(db, walk.id)
    stored.pending_node = {k: v for k, v in node.items() if k != "token"}
    db.add(stored)
    await db.commit()
    shown = await ai_steps.advance_ai_build(db, actor=desk.tech, session_id=walk.id, generator=gen, judge=None)
    assert shown["token"] and (await reload(db, walk.id)).pending_node == shown
    nxt = await ai_steps.advance_ai_build(
        db, actor=desk.tech, session_id=walk.id, generator=gen, judge=None, token=shown["token"], answer="no"
    )
    assert nxt["id"] == "i-restart" and len(gen.calls) == 2


async def test_a_database_with_two_active_walks_on_a_ticket_is_upgraded_keeping_the_newest(empty_db_url):
    """Before the index, two walks could be active on one ticket: the upgrade closes the
    older as escalated (with a reason an engineer can act on) instead of failing."""
    from sqlalchemy import text

    from rflow_tui.db import make_engine, open_store, upgrade_schema

    engine = make_engine(empty_db_url)
    async with engine.begin() as conn:
        await conn.run_sync(upgrade_schema, "0002")
        await conn.execute(
            text("INSERT INTO account (id, name, created_at) VALUES (1, 'Old desk', '2025-01-01 00:00:00')")
        )
        await conn.execute(
            text(
                'INSERT INTO "user" (id, account_id, email, name, account_role, coverage, is_active, created_at) '
                "VALUES (1, 1, 'tech@old.test', 'Tech', 'l1_tech', false, true, '2025-01-01 00:00:00')"
            )
        )
        for walk_id, last_step in ((1, "2025-01-02 09:00:00"), (2, "2025-01-02 10:00:00"), (3, "2025-01-02 08:00:00")):
            await conn.execute(
                text(
                    "INSERT INTO l1_walk_session (id, account_id, created_by_user_id, ticket_id, ticket_kind, "
                    "session_kind, status, walked_path, walk_notes, created_at, last_step_at) "
                    "VALUES (:id, 1, 1, :ticket, 'internal', "
                    f"'adhoc', 'active', '[]', '[]', '2025-01-02 08:00:00', '{last_step}')"
                ),
                {"id": walk_id, "ticket": "T-9" if walk_id < 3 else "T-10"},
            )
    await engine.dispose()

    engine, open_db = await open_store(empty_db_url)
    async with open_db() as session:
        walks = {w.id: w for w in await session.exec(select(L1WalkSession))}
    await engine.dispose()
    assert (walks[2].status, walks[3].status) == ("active", "active")  # newest on T-9; alone on T-10
    assert walks[1].status == "escalated" and "one active walk per ticket" in walks[1].escalation_reason
    assert walks[1].resolved_at is not None and {w.version for w in walks.values()} == {0}
