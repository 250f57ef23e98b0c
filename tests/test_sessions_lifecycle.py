"""One test (at least) per rule of SPEC "Walk sessions" > "Lifecycle rules"."""

from __future__ import annotations

import json
import logging
from datetime import datetime

import pytest
from sqlmodel import select

from rflow_tui.flows.walked_path import normalize_walked_path
from rflow_tui.models import AuditLog, Flow, FlowProposal, L1WalkSession, Notification, Ticket, utcnow
from rflow_tui.services import notifications
from rflow_tui.services.errors import AccessDenied, InvalidState, NotFound, PayloadTooLarge, ValidationFailed
from rflow_tui.services.users import update_user
from rflow_tui.services.walks import ai_steps
from rflow_tui.services.walks import core as walk_core
from rflow_tui.services.walks import endings as walk_endings
from rflow_tui.services.walks import reads as walk_reads
from rflow_tui.services.walks import start as walk_start
from rflow_tui.services.walks import steps as walk_steps
from tests.conftest import make_desk
from tests.fakes import ScriptedGenerator
from tests.walk_paths import path_of, steps_of

ACCOUNT_Q = {
    "id": "q-account",
    "type": "question",
    "text": "Does the user sign in with a Microsoft account or a local account?",
    "yes_label": "Microsoft account",
    "no_label": "Local account",
}
RESTART_I = {"id": "i-restart", "type": "instruction", "text": "Restart Outlook in safe mode (outlook.exe /safe)."}
WORKED_Q = {"id": "q-worked", "type": "question", "text": "Does Outlook open now?"}


async def ai_session(db, desk, ticket="T-1", problem="Outlook will not open", category="email"):
    return await walk_start.start_ai_build_session(
        db, actor=desk.tech, ticket_id=ticket, category=category, problem_text=problem
    )


async def reload(db, walk_id: int) -> L1WalkSession:
    db.expire_all()
    return await db.get(L1WalkSession, walk_id)


async def pending_token(db, walk_id: int) -> str:
    """The token the served node carries: an answer names it (node ids can repeat)."""
    return (await reload(db, walk_id)).pending_node["token"]


async def audits(db, action: str) -> list[AuditLog]:
    return list(await db.exec(select(AuditLog).where(AuditLog.action == action)))


# --- roles -----------------------------------------------------------------------


async def test_native_l1_tech_sessions_have_no_acting_as(db, desk):
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")
    assert walk.acting_as is None
    assert walk.created_by_user_id == desk.tech.id


async def test_engineer_with_coverage_sessions_are_tagged_l1_coverage(db, desk):
    walk = await walk_start.start_adhoc_session(db, actor=desk.coverage, ticket_id="T-1")
    assert walk.acting_as == "l1_coverage"


@pytest.mark.parametrize("who", ["engineer", "owner", "admin"])
async def test_users_without_l1_surface_are_refused_with_a_clear_message(db, desk, who):
    with pytest.raises(AccessDenied, match=r"coverage|L1 techs"):
        await walk_start.start_adhoc_session(db, actor=getattr(desk, who), ticket_id="T-1")
    assert (await db.exec(select(L1WalkSession))).first() is None


async def test_deactivated_tech_cannot_walk(db, desk):
    await update_user(db, actor=desk.owner, email=desk.tech.email, active=False)
    with pytest.raises(AccessDenied, match="deactivated"):
        await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")


# --- refusals: missing, not active, wrong kind --------------------------------------


async def test_every_operation_refuses_a_missing_session(db, desk):
    gen = ScriptedGenerator(RESTART_I)
    calls = [
        walk_steps.record_step(db, actor=desk.tech, session_id=999, node_id="n", question="q", answer="yes"),
        walk_steps.update_notes(db, actor=desk.tech, session_id=999, notes=["x"]),
        ai_steps.advance_ai_build(db, actor=desk.tech, session_id=999, generator=gen, judge=None),
        walk_endings.resolve(db, actor=desk.tech, session_id=999, helpful=True, resolution_notes="done"),
        walk_endings.escalate(db, actor=desk.tech, session_id=999, reason="stuck", reason_category="other"),
    ]
    for call in calls:
        with pytest.raises(NotFound, match="does not exist"):
            await call
    assert gen.calls == []


async def test_every_operation_refuses_a_session_that_is_not_active(db, desk):
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")
    await walk_endings.resolve(db, actor=desk.tech, session_id=walk.id, helpful=False, resolution_notes="fixed")
    with pytest.raises(InvalidState, match="resolved, not active"):
        await walk_steps.update_notes(db, actor=desk.tech, session_id=walk.id, notes=["late"])
    with pytest.raises(InvalidState, match="not active"):
        await walk_endings.escalate(db, actor=desk.tech, session_id=walk.id, reason="r", reason_category="other")
    with pytest.raises(InvalidState, match="not active"):
        await walk_endings.resolve(db, actor=desk.tech, session_id=walk.id, helpful=True, resolution_notes="again")
    assert (await reload(db, walk.id)).walk_notes == []


async def test_escalated_ai_session_refuses_advance_without_calling_generator(db, desk):
    walk = await ai_session(db, desk)
    await walk_endings.escalate(db, actor=desk.tech, session_id=walk.id, reason="r", reason_category="other")
    gen = ScriptedGenerator(ACCOUNT_Q)
    with pytest.raises(InvalidState, match="escalated, not active"):
        await ai_steps.advance_ai_build(db, actor=desk.tech, session_id=walk.id, generator=gen, judge=None)
    assert gen.calls == []


async def test_record_step_is_refused_on_adhoc_and_ai_build_sessions(db, desk):
    adhoc = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")
    ai = await ai_session(db, desk, ticket="T-2")
    for walk in (adhoc, ai):
        with pytest.raises(InvalidState, match="needs flow or proposal"):
            await walk_steps.record_step(
                db, actor=desk.tech, session_id=walk.id, node_id="n", question="q", answer="yes"
            )
        assert (await path_of(db, await reload(db, walk.id))) == []


async def test_advance_ai_build_is_refused_on_other_kinds(db, desk):
    adhoc = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")
    gen = ScriptedGenerator(ACCOUNT_Q)
    with pytest.raises(InvalidState, match="needs ai_build"):
        await ai_steps.advance_ai_build(db, actor=desk.tech, session_id=adhoc.id, generator=gen, judge=None)
    assert gen.calls == []


# --- record_step and update_notes -------------------------------------------------


async def flow_session(db, desk) -> L1WalkSession:
    flow = Flow(account_id=desk.tech.account_id, slug="outlook", title="Outlook", flow_data={"nodes": []})
    db.add(flow)
    await db.commit()
    return await walk_start.start_flow_session(db, actor=desk.tech, ticket_id="T-1", flow_id=flow.id)


async def test_record_step_appends_entry_and_sets_current_node_and_last_step(db, desk):
    walk = await flow_session(db, desk)
    before = walk.last_step_at
    await walk_steps.record_step(
        db, actor=desk.tech, session_id=walk.id, node_id="n1", question="Is it plugged in?", answer="yes", note="it is"
    )
    await walk_steps.record_step(
        db, actor=desk.tech, session_id=walk.id, node_id="n2", question="Lights on?", answer="no"
    )
    stored = await reload(db, walk.id)
    spec_fields = ("node_id", "question", "answer", "l1_note")
    assert [{k: entry[k] for k in spec_fields} for entry in (await path_of(db, stored))] == [
        {"node_id": "n1", "question": "Is it plugged in?", "answer": "yes", "l1_note": "it is"},
        {"node_id": "n2", "question": "Lights on?", "answer": "no", "l1_note": None},
    ]
    # Readers never guess: the kind of step and the labels chosen are stored with it.
    assert [(e["node_type"], e["answer_label"]) for e in (await path_of(db, stored))] == [
        ("question", "Yes"),
        ("question", "No"),
    ]
    assert stored.current_node_id == "n2"
    assert stored.last_step_at >= before


async def test_update_notes_replaces_walk_notes(db, desk):
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")
    await walk_steps.update_notes(db, actor=desk.tech, session_id=walk.id, notes=["first"])
    await walk_steps.update_notes(db, actor=desk.tech, session_id=walk.id, notes=["called user", "rebooted"])
    assert (await reload(db, walk.id)).walk_notes == ["called user", "rebooted"]


async def test_update_notes_over_256_kib_is_refused_and_old_notes_survive(db, desk):
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")
    await walk_steps.update_notes(db, actor=desk.tech, session_id=walk.id, notes=["keep me"])
    too_big = ["x" * (256 * 1024)]
    with pytest.raises(PayloadTooLarge, match="256 KiB"):
        await walk_steps.update_notes(db, actor=desk.tech, session_id=walk.id, notes=too_big)
    assert (await reload(db, walk.id)).walk_notes == ["keep me"]


async def test_update_notes_just_under_the_cap_is_accepted(db, desk):
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")
    notes = ["x" * (256 * 1024 - len(json.dumps([""])))]
    assert len(json.dumps(notes).encode()) == 256 * 1024
    await walk_steps.update_notes(db, actor=desk.tech, session_id=walk.id, notes=notes)
    assert (await reload(db, walk.id)).walk_notes == notes


# --- advance_ai_build ---------------------------------------------------------------


async def test_ai_build_stores_category_and_problem_text_once(db, desk):
    walk = await ai_session(db, desk, problem="Outlook crashes at start", category="email")
    gen = ScriptedGenerator(ACCOUNT_Q, RESTART_I)
    await ai_steps.advance_ai_build(db, actor=desk.tech, session_id=walk.id, generator=gen, judge=None)
    ticket = (await db.exec(select(Ticket).where(Ticket.ticket_id == "T-1"))).one()
    ticket.subject, ticket.category = "changed subject", "printing"
    db.add(ticket)
    await db.commit()
    await ai_steps.advance_ai_build(
        db,
        actor=desk.tech,
        session_id=walk.id,
        generator=gen,
        judge=None,
        node_id="q-account",
        token=await pending_token(db, walk.id),
        answer="yes",
    )
    assert [(c.problem_text, c.category) for c in gen.calls] == [("Outlook crashes at start", "email")] * 2
    stored = await reload(db, walk.id)
    assert (stored.problem_text, stored.category) == ("Outlook crashes at start", "email")


async def test_pending_node_is_replayed_without_a_new_generator_call(db, desk):
    walk = await ai_session(db, desk)
    gen = ScriptedGenerator(ACCOUNT_Q, RESTART_I)
    first = await ai_steps.advance_ai_build(db, actor=desk.tech, session_id=walk.id, generator=gen, judge=None)
    again = await ai_steps.advance_ai_build(db, actor=desk.tech, session_id=walk.id, generator=gen, judge=None)
    assert again == first
    assert again["yes_label"] == "Microsoft account"
    assert len(gen.calls) == 1
    stored = await reload(db, walk.id)
    assert stored.pending_node == first and stored.current_node_id == "q-account"


async def test_answered_question_records_labels_from_the_server_held_pending_node(db, desk):
    walk = await ai_session(db, desk)
    gen = ScriptedGenerator(ACCOUNT_Q, RESTART_I)
    await ai_steps.advance_ai_build(db, actor=desk.tech, session_id=walk.id, generator=gen, judge=None)
    before = utcnow()
    nxt = await ai_steps.advance_ai_build(
        db,
        actor=desk.tech,
        session_id=walk.id,
        generator=gen,
        judge=None,
        node_id="q-account",
        token=await pending_token(db, walk.id),
        answer="no",
        note="local acct",
    )
    stored = await reload(db, walk.id)
    path = await path_of(db, stored)
    answered_at = datetime.fromisoformat(path[0].pop("at"))  # when, for the time spent on it
    assert before <= answered_at <= utcnow()
    assert path == [
        {
            "node_type": "question",
            "id": "q-account",
            "text": ACCOUNT_Q["text"],
            "answer": "no",
            "l1_note": "local acct",
            "answer_label": "Local account",
            "yes_label": "Microsoft account",
            "no_label": "Local account",
        }
    ]
    assert nxt["id"] == "i-restart" and stored.pending_node == nxt and stored.current_node_id == "i-restart"


async def test_labels_sent_by_the_caller_are_never_recorded(db, desk):
    walk = await ai_session(db, desk)
    gen = ScriptedGenerator(ACCOUNT_Q, RESTART_I)
    await ai_steps.advance_ai_build(db, actor=desk.tech, session_id=walk.id, generator=gen, judge=None)
    with pytest.raises(TypeError):
        await ai_steps.advance_ai_build(  # the API has no way to pass labels at all
            db,
            actor=desk.tech,
            session_id=walk.id,
            generator=gen,
            judge=None,
            node_id="q-account",
            answer="yes",
            answer_label="Forged",
            yes_label="Forged",
        )
    await ai_steps.advance_ai_build(
        db,
        actor=desk.tech,
        session_id=walk.id,
        generator=gen,
        judge=None,
        node_id="q-account",
        token=await pending_token(db, walk.id),
        answer="yes",
    )
    entry = (await path_of(db, await reload(db, walk.id)))[0]
    assert (entry["answer_label"], entry["yes_label"]) == ("Microsoft account", "Microsoft account")


async def test_instruction_is_recorded_acknowledged_with_null_answer(db, desk):
    walk = await ai_session(db, desk)
    gen = ScriptedGenerator(RESTART_I, WORKED_Q)
    await ai_steps.advance_ai_build(db, actor=desk.tech, session_id=walk.id, generator=gen, judge=None)
    await ai_steps.advance_ai_build(
        db,
        actor=desk.tech,
        session_id=walk.id,
        generator=gen,
        judge=None,
        node_id="i-restart",
        token=await pending_token(db, walk.id),
        note="done",
    )
    entry = (await path_of(db, await reload(db, walk.id)))[0]
    assert datetime.fromisoformat(entry.pop("at")) <= utcnow()
    assert entry == {
        "node_type": "instruction",
        "id": "i-restart",
        "text": RESTART_I["text"],
        "answer": None,
        "l1_note": "done",
    }


async def test_plain_question_without_labels_defaults_to_yes_no(db, desk):
    walk = await ai_session(db, desk)
    gen = ScriptedGenerator(WORKED_Q, RESTART_I)
    node = await ai_steps.advance_ai_build(db, actor=desk.tech, session_id=walk.id, generator=gen, judge=None)
    assert (node["yes_label"], node["no_label"]) == ("Yes", "No")
    await ai_steps.advance_ai_build(
        db,
        actor=desk.tech,
        session_id=walk.id,
        generator=gen,
        judge=None,
        node_id="q-worked",
        token=await pending_token(db, walk.id),
        answer="yes",
    )
    assert (await path_of(db, await reload(db, walk.id)))[0]["answer_label"] == "Yes"


async def test_generator_sees_the_walked_path_with_chosen_labels(db, desk):
    walk = await ai_session(db, desk)
    gen = ScriptedGenerator(ACCOUNT_Q, RESTART_I)
    await ai_steps.advance_ai_build(db, actor=desk.tech, session_id=walk.id, generator=gen, judge=None)
    await ai_steps.advance_ai_build(
        db,
        actor=desk.tech,
        session_id=walk.id,
        generator=gen,
        judge=None,
        node_id="q-account",
        token=await pending_token(db, walk.id),
        answer="yes",
    )
    assert gen.calls[1].walked_path[0].answer_label == "Microsoft account"


async def test_answering_a_node_that_is_not_pending_is_refused(db, desk):
    walk = await ai_session(db, desk)
    gen = ScriptedGenerator(ACCOUNT_Q, RESTART_I)
    await ai_steps.advance_ai_build(db, actor=desk.tech, session_id=walk.id, generator=gen, judge=None)
    with pytest.raises(InvalidState, match="not the question waiting"):
        await ai_steps.advance_ai_build(
            db,
            actor=desk.tech,
            session_id=walk.id,
            generator=gen,
            judge=None,
            node_id="other",
            token=await pending_token(db, walk.id),
            answer="yes",
        )
    assert len(gen.calls) == 1 and (await path_of(db, await reload(db, walk.id))) == []


async def test_failed_generation_keeps_the_answer_and_retry_generates(db, desk):
    class Flaky(ScriptedGenerator):
        async def generate(self, context):
            if len(self.calls) == 1:
                self.calls.append(context)
                from rflow_tui.ai.errors import GenerationError

                raise GenerationError("the AI service is overloaded")
            return await super().generate(context)

    walk = await ai_session(db, desk)
    gen = Flaky(ACCOUNT_Q, RESTART_I)
    await ai_steps.advance_ai_build(db, actor=desk.tech, session_id=walk.id, generator=gen, judge=None)
    with pytest.raises(Exception, match="overloaded"):
        await ai_steps.advance_ai_build(
            db,
            actor=desk.tech,
            session_id=walk.id,
            generator=gen,
            judge=None,
            node_id="q-account",
            token=await pending_token(db, walk.id),
            answer="yes",
        )
    stored = await reload(db, walk.id)
    assert len(await path_of(db, stored)) == 1 and stored.pending_node is None
    node = await ai_steps.advance_ai_build(db, actor=desk.tech, session_id=walk.id, generator=gen, judge=None)
    assert node["id"] == "i-restart"


# --- resolve ----------------------------------------------------------------------


async def test_resolve_sets_status_helpful_notes_and_times(db, desk):
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")
    await walk_endings.resolve(
        db, actor=desk.tech, session_id=walk.id, helpful=True, resolution_notes="Rebuilt profile"
    )
    stored = await reload(db, walk.id)
    assert (stored.status, stored.helpful, stored.resolution_notes) == ("resolved", True, "Rebuilt profile")
    assert stored.resolved_at is not None and stored.last_step_at == stored.resolved_at


async def test_resolve_sets_internal_ticket_resolved_with_notes(db, desk):
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")
    await walk_endings.resolve(db, actor=desk.tech, session_id=walk.id, helpful=False, resolution_notes="Cleared cache")
    db.expire_all()
    ticket = (await db.exec(select(Ticket).where(Ticket.ticket_id == "T-1"))).one()
    assert (ticket.status, ticket.resolution_notes) == ("resolved", "Cleared cache")


async def test_resolve_on_psa_ticket_records_the_walk_only(db, desk):
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="CW-88123", ticket_kind="psa")
    await walk_endings.resolve(db, actor=desk.tech, session_id=walk.id, helpful=True, resolution_notes="ok")
    assert (await db.exec(select(Ticket).where(Ticket.ticket_id == "CW-88123"))).first() is None
    assert (await reload(db, walk.id)).status == "resolved"


async def test_resolve_writes_an_audit_entry(db, desk):
    walk = await ai_session(db, desk)
    await walk_endings.resolve(db, actor=desk.tech, session_id=walk.id, helpful=False, resolution_notes="x")
    [entry] = await audits(db, "l1.session.resolve")
    assert entry.target_id == str(walk.id) and entry.actor_user_id == desk.tech.id
    assert entry.details == {
        "session_kind": "ai_build",
        "helpful": False,
        "ticket_id": "T-1",
        "ticket_kind": "internal",
        "acting_as": None,
        "proposal_id": None,
    }


async def test_helpful_proposal_walk_marks_proposal_validated_by_outcome(db, desk):
    proposal = FlowProposal(account_id=desk.tech.account_id, title="p", proposed_flow_data={"tree_structure": {}})
    db.add(proposal)
    await db.commit()
    walk = await walk_start.start_proposal_session(db, actor=desk.tech, ticket_id="T-1", proposal_id=proposal.id)
    await walk_endings.resolve(db, actor=desk.tech, session_id=walk.id, helpful=True, resolution_notes="worked")
    db.expire_all()
    assert (await db.get(FlowProposal, proposal.id)).validated_by_outcome is True


async def test_unhelpful_proposal_walk_leaves_proposal_unvalidated(db, desk):
    proposal = FlowProposal(account_id=desk.tech.account_id, title="p", proposed_flow_data={"tree_structure": {}})
    db.add(proposal)
    await db.commit()
    walk = await walk_start.start_proposal_session(db, actor=desk.tech, ticket_id="T-1", proposal_id=proposal.id)
    await walk_endings.resolve(db, actor=desk.tech, session_id=walk.id, helpful=False, resolution_notes="nope")
    db.expire_all()
    assert (await db.get(FlowProposal, proposal.id)).validated_by_outcome is False


async def walked_ai_session(db, desk) -> L1WalkSession:
    walk = await ai_session(db, desk)
    gen = ScriptedGenerator(ACCOUNT_Q, RESTART_I, WORKED_Q)
    await ai_steps.advance_ai_build(db, actor=desk.tech, session_id=walk.id, generator=gen, judge=None)
    await ai_steps.advance_ai_build(
        db,
        actor=desk.tech,
        session_id=walk.id,
        generator=gen,
        judge=None,
        node_id="q-account",
        token=await pending_token(db, walk.id),
        answer="no",
    )
    await ai_steps.advance_ai_build(
        db,
        actor=desk.tech,
        session_id=walk.id,
        generator=gen,
        judge=None,
        node_id="i-restart",
        token=await pending_token(db, walk.id),
    )
    return walk


async def test_flywheel_helpful_ai_build_stores_a_validated_pending_proposal(db, desk):
    walk = await walked_ai_session(db, desk)
    await walk_endings.resolve(
        db, actor=desk.tech, session_id=walk.id, helpful=True, resolution_notes="Safe mode fixed it"
    )
    stored = await reload(db, walk.id)
    [proposal] = list(await db.exec(select(FlowProposal)))
    assert proposal.proposal_type == "new_flow"
    assert proposal.source == "ai_realtime_l1"
    assert proposal.validated_by_outcome is True
    assert proposal.status == "pending"
    assert proposal.title == "Safe mode fixed it"
    assert proposal.proposed_flow_data == {
        "tree_structure": normalize_walked_path(await steps_of(db, stored)),
        "match_keywords": [],
    }
    assert (proposal.source_session_id, proposal.ticket_id, proposal.ticket_kind) == (walk.id, "T-1", "internal")
    assert proposal.account_id == desk.tech.account_id
    question = proposal.proposed_flow_data["tree_structure"]["nodes"][0]
    assert (question["yes_label"], question["no_label"]) == ("Microsoft account", "Local account")


async def test_flywheel_title_is_cut_to_255_or_defaults(db, desk):
    walk = await walked_ai_session(db, desk)
    await walk_endings.resolve(db, actor=desk.tech, session_id=walk.id, helpful=True, resolution_notes="n" * 300)
    [proposal] = list(await db.exec(select(FlowProposal)))
    assert proposal.title == "n" * 255

    walk2 = await walk_start.start_ai_build_session(
        db, actor=desk.tech, ticket_id="T-2", category="printing", problem_text="p"
    )
    gen = ScriptedGenerator(RESTART_I)
    await ai_steps.advance_ai_build(db, actor=desk.tech, session_id=walk2.id, generator=gen, judge=None)
    await ai_steps.advance_ai_build(
        db,
        actor=desk.tech,
        session_id=walk2.id,
        generator=ScriptedGenerator(WORKED_Q),
        judge=None,
        node_id="i-restart",
        token=await pending_token(db, walk2.id),
    )
    await walk_endings.resolve(db, actor=desk.tech, session_id=walk2.id, helpful=True, resolution_notes="   ")
    titles = sorted(p.title for p in await db.exec(select(FlowProposal)))
    assert "AI L1 resolution" in titles


async def test_no_flywheel_proposal_when_unhelpful_or_path_empty(db, desk):
    walk = await walked_ai_session(db, desk)
    await walk_endings.resolve(db, actor=desk.tech, session_id=walk.id, helpful=False, resolution_notes="no")
    empty = await ai_session(db, desk, ticket="T-2")
    await walk_endings.resolve(
        db, actor=desk.tech, session_id=empty.id, helpful=True, resolution_notes="fixed before any step"
    )
    assert list(await db.exec(select(FlowProposal))) == []


# --- escalate -------------------------------------------------------------------------


async def test_escalate_sets_status_reason_fields_and_times(db, desk):
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")
    await walk_endings.escalate(
        db, actor=desk.tech, session_id=walk.id, reason="Needs a new mailbox", reason_category="needs_admin"
    )
    stored = await reload(db, walk.id)
    assert (stored.status, stored.escalation_reason, stored.escalation_reason_category) == (
        "escalated",
        "Needs a new mailbox",
        "needs_admin",
    )
    assert stored.resolved_at is not None and stored.last_step_at == stored.resolved_at


async def test_escalate_sets_internal_ticket_escalated_and_audits(db, desk):
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")
    await walk_endings.escalate(db, actor=desk.tech, session_id=walk.id, reason="r", reason_category="hardware")
    db.expire_all()
    assert (await db.exec(select(Ticket.status).where(Ticket.ticket_id == "T-1"))).one() == "escalated"
    [entry] = await audits(db, "l1.session.escalate")
    assert entry.details["reason_category"] == "hardware" and entry.target_id == str(walk.id)


async def test_escalate_refuses_unknown_category_or_empty_reason(db, desk):
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")
    with pytest.raises(ValidationFailed, match="reason category"):
        await walk_endings.escalate(db, actor=desk.tech, session_id=walk.id, reason="r", reason_category="bogus")
    with pytest.raises(ValidationFailed, match="why"):
        await walk_endings.escalate(db, actor=desk.tech, session_id=walk.id, reason="  ", reason_category="other")
    assert (await reload(db, walk.id)).status == "active"


async def test_escalation_notifies_every_active_engineer_side_user(db, desk):
    walk = await walk_start.start_ai_build_session(
        db, actor=desk.tech, ticket_id="T-1", category="email", problem_text="Outlook will not open\n\nsince Monday"
    )
    await walk_endings.escalate(db, actor=desk.tech, session_id=walk.id, reason="r", reason_category="other")
    notes = list(await db.exec(select(Notification)))
    assert sorted(n.recipient_user_id for n in notes) == sorted(
        u.id for u in (desk.owner, desk.admin, desk.engineer, desk.coverage)
    )
    assert all(n.kind == "l1.session.escalated" for n in notes)
    assert notes[0].payload["session_id"] == walk.id
    assert notes[0].payload["reason_category"] == "other"
    assert notes[0].payload["problem_summary"] == "Outlook will not open"


async def test_inactive_and_deleted_users_are_not_notified(db, desk):
    desk.engineer.is_active = False
    desk.admin.deleted_at = utcnow()
    db.add_all([desk.engineer, desk.admin])
    await db.commit()
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")
    await walk_endings.escalate(db, actor=desk.tech, session_id=walk.id, reason="r", reason_category="other")
    recipients = {n.recipient_user_id for n in await db.exec(select(Notification))}
    assert recipients == {desk.owner.id, desk.coverage.id}


async def test_escalation_with_no_recipient_falls_back_to_owner_admin_group_and_warns(db, desk, caplog):
    for user in (desk.owner, desk.admin, desk.engineer, desk.coverage):
        user.is_active = False
        db.add(user)
    await db.commit()
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")
    with caplog.at_level(logging.WARNING, logger="rflow_tui.services.notifications"):
        await walk_endings.escalate(db, actor=desk.tech, session_id=walk.id, reason="r", reason_category="other")
    [note] = list(await db.exec(select(Notification)))
    assert note.recipient_user_id is None and note.payload["fallback"] == "owner_admin"
    assert note.payload["session_id"] == walk.id
    assert "no active owner/admin/engineer" in caplog.text


async def test_escalate_without_walk_creates_escalated_adhoc_session(db, desk):
    walk = await walk_endings.escalate_without_walk(
        db, actor=desk.tech, ticket_id="T-2", reason="No flow and AI is down", reason_category="no_flow"
    )
    stored = await reload(db, walk.id)
    assert (stored.session_kind, stored.status, (await path_of(db, stored))) == ("adhoc", "escalated", [])
    db.expire_all()
    assert (await db.exec(select(Ticket.status).where(Ticket.ticket_id == "T-2"))).one() == "escalated"
    [entry] = await audits(db, "l1.session.escalate_no_walk")
    assert entry.target_id == str(walk.id)
    assert len(list(await db.exec(select(Notification)))) == 4


# --- account isolation ---------------------------------------------------------------


async def test_one_accounts_session_is_invisible_to_another_accounts_user(db, desk):
    other = await make_desk(db, name="Fabrikam", domain="fabrikam.test")
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")
    with pytest.raises(NotFound):
        await walk_core.get_session(db, actor=other.tech, session_id=walk.id)
    with pytest.raises(NotFound):
        await walk_steps.update_notes(db, actor=other.tech, session_id=walk.id, notes=["intruder"])
    with pytest.raises(NotFound):
        await walk_endings.resolve(db, actor=other.tech, session_id=walk.id, helpful=True, resolution_notes="x")
    assert await walk_reads.active_sessions_for(db, actor=other.tech) == []
    await walk_endings.escalate(db, actor=desk.tech, session_id=walk.id, reason="r", reason_category="other")
    assert await walk_reads.list_escalations(db, actor=other.engineer) == []
    assert [w.id for w in await walk_reads.list_escalations(db, actor=desk.engineer)] == [walk.id]
    stored = await reload(db, walk.id)
    assert stored.walk_notes == []


async def test_a_walk_cannot_start_on_another_accounts_ticket(db, desk):
    other = await make_desk(db, name="Fabrikam", domain="fabrikam.test")
    db.add(Ticket(account_id=other.owner.account_id, ticket_id="F-1", subject="theirs"))
    await db.commit()
    with pytest.raises(NotFound, match="no ticket F-1"):
        await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="F-1")


async def test_escalation_notifications_stay_in_the_account(db, desk):
    other = await make_desk(db, name="Fabrikam", domain="fabrikam.test")
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")
    await walk_endings.escalate(db, actor=desk.tech, session_id=walk.id, reason="r", reason_category="other")
    other_ids = {u.id for u in (other.owner, other.admin, other.engineer, other.coverage, other.tech)}
    assert not other_ids & {n.recipient_user_id for n in await db.exec(select(Notification))}


async def test_resume_lists_the_techs_active_sessions_newest_first(db, desk):
    a = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")
    b = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-2")
    done = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-3")
    await walk_endings.resolve(db, actor=desk.tech, session_id=done.id, helpful=True, resolution_notes="x")
    await walk_steps.update_notes(db, actor=desk.tech, session_id=a.id, notes=["touched last"])
    assert [w.id for w in await walk_reads.active_sessions_for(db, actor=desk.tech)] == [a.id, b.id]


async def test_escalation_is_all_or_nothing_when_notifying_fails(db, desk, monkeypatch):
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")

    async def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(notifications, "notify_escalation", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        await walk_endings.escalate(db, actor=desk.tech, session_id=walk.id, reason="r", reason_category="other")
    stored = await reload(db, walk.id)
    assert stored.status == "active" and stored.escalation_reason is None
    assert (await db.exec(select(Ticket.status).where(Ticket.ticket_id == "T-1"))).one() == "in_progress"
    assert await audits(db, "l1.session.escalate") == []


async def test_starting_a_walk_marks_the_internal_ticket_in_progress_and_audits(db, desk):
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")
    assert (await db.exec(select(Ticket.status).where(Ticket.ticket_id == "T-1"))).one() == "in_progress"
    [entry] = await audits(db, "l1.session.start")
    assert entry.target_id == str(walk.id) and entry.details["session_kind"] == "adhoc"
