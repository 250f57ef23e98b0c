"""Walking a flow or a proposal: answers follow the labelled branches, every step is
recorded with what the tech saw, and stepping back keeps the history."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from rflow_tui.db import open_store
from rflow_tui.domain.enums import TERMINAL_NODE_TYPES
from rflow_tui.domain.walk_step import live_steps, read_path
from rflow_tui.flows.check import check_flow
from rflow_tui.flows.format import FORMAT, next_node_id, node_by_id
from rflow_tui.models import FlowProposal
from rflow_tui.services import library
from rflow_tui.services.errors import InvalidState, ServiceError, ValidationFailed
from rflow_tui.services.walks import core as walk_core
from rflow_tui.services.walks import endings as walk_endings
from rflow_tui.services.walks import flow_steps
from rflow_tui.services.walks import start as walk_start
from rflow_tui.services.walks import steps as walk_steps
from tests.conftest import make_desk
from tests.walk_paths import path_of, steps_of

SIGN_IN_FLOW = {
    "format": FORMAT,
    "title": "Cannot sign in",
    "category": "account",
    "match_keywords": ["sign in"],
    "start": "kind",
    "nodes": [
        {
            "id": "kind",
            "type": "question",
            "text": "Microsoft account or local account?",
            "yes_label": "Microsoft account",
            "no_label": "Local account",
            "yes": "web",
            "no": "local",
        },
        {"id": "web", "type": "instruction", "text": "Use the reset page on the user's phone.", "next": "works"},
        {
            "id": "local",
            "type": "instruction",
            "text": "Use the security questions on the sign-in screen.",
            "next": "works",
        },
        {"id": "works", "type": "question", "text": "Can the user sign in now?", "yes": "done", "no": "esc"},
        {"id": "done", "type": "resolution", "text": "Resolved."},
        {"id": "esc", "type": "escalate", "text": "Escalate to an engineer."},
    ],
}


async def start_walk(db, desk, doc=SIGN_IN_FLOW, ticket="T-1"):
    flow = await library.import_flow_doc(db, actor=desk.owner, doc=doc, source="test")
    walk = await walk_start.start_flow_session(db, actor=desk.tech, ticket_id=ticket, flow_id=flow.id)
    return walk


async def test_a_walk_follows_the_labelled_answers_to_resolution(db, desk):
    walk = await start_walk(db, desk)
    node = await flow_steps.current_flow_node(db, actor=desk.tech, session_id=walk.id)
    assert node["id"] == "kind" and node["yes_label"] == "Microsoft account"

    node = await flow_steps.answer_flow_node(
        db, actor=desk.tech, session_id=walk.id, answer="no", note="laptop at home"
    )
    assert node["id"] == "local"
    node = await flow_steps.answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer=None)
    assert node["id"] == "works" and (node["yes_label"], node["no_label"]) == ("Yes", "No")
    node = await flow_steps.answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer="yes")
    assert node["type"] == "resolution"

    stored = await walk_core.get_session(db, actor=desk.tech, session_id=walk.id)
    assert [(s["node_id"], s["answer"]) for s in (await path_of(db, stored))] == [
        ("kind", "no"),
        ("local", None),
        ("works", "yes"),
    ]
    first = (await path_of(db, stored))[0]
    assert first["question"] == "Microsoft account or local account?"
    assert (first["answer_label"], first["yes_label"], first["no_label"]) == (
        "Local account",
        "Microsoft account",
        "Local account",
    )
    assert first["l1_note"] == "laptop at home" and first["node_type"] == "question"
    assert (await path_of(db, stored))[1]["node_type"] == "instruction" and "answer_label" not in (
        await path_of(db, stored)
    )[1]
    assert stored.current_node_id == "works"

    with pytest.raises(InvalidState, match="reached its end"):
        await flow_steps.answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer="yes")
    resolved = await walk_endings.resolve(db, actor=desk.tech, session_id=walk.id, helpful=True, resolution_notes="ok")
    assert resolved.status == "resolved"


async def test_a_question_needs_yes_or_no_and_an_instruction_ignores_the_answer(db, desk):
    walk = await start_walk(db, desk)
    with pytest.raises(ValidationFailed):
        await flow_steps.answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer=None)
    await flow_steps.answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer="yes")
    await flow_steps.answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer="no")  # instruction: acknowledged
    stored = await walk_core.get_session(db, actor=desk.tech, session_id=walk.id)
    assert (await path_of(db, stored))[-1]["answer"] is None
    assert (await path_of(db, stored))[0]["answer_label"] == "Microsoft account"


async def test_an_answer_for_a_node_the_screen_no_longer_shows_is_refused(db, desk):
    walk = await start_walk(db, desk)
    await flow_steps.answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer="yes", node_id="kind")
    with pytest.raises(InvalidState, match="another window"):
        await flow_steps.answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer="yes", node_id="kind")
    stored = await walk_core.get_session(db, actor=desk.tech, session_id=walk.id)
    assert len(await path_of(db, stored)) == 1


async def test_step_back_marks_the_step_undone_and_keeps_it(db, desk):
    walk = await start_walk(db, desk)
    with pytest.raises(InvalidState, match="first node"):
        await flow_steps.step_back(db, actor=desk.tech, session_id=walk.id)
    await flow_steps.answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer="yes", note="first try")
    back_to = await flow_steps.step_back(db, actor=desk.tech, session_id=walk.id)
    assert back_to["id"] == "kind"
    node = await flow_steps.answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer="no")
    assert node["id"] == "local"

    stored = await walk_core.get_session(db, actor=desk.tech, session_id=walk.id)
    assert len(await path_of(db, stored)) == 2
    undone, redone = await path_of(db, stored)
    assert undone["undone"] is True and undone["undone_at"]
    assert (undone["answer"], undone["answer_label"], undone["l1_note"]) == ("yes", "Microsoft account", "first try")
    assert redone["answer"] == "no" and not redone.get("undone")
    assert [s.node_id for s in live_steps(await steps_of(db, stored))] == ["kind"]


async def test_step_back_is_refused_on_a_finished_walk(db, desk):
    walk = await start_walk(db, desk)
    await flow_steps.answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer="yes")
    await walk_endings.escalate(
        db, actor=desk.tech, session_id=walk.id, reason="user left", reason_category="user_unavailable"
    )
    with pytest.raises(InvalidState, match="escalated"):
        await flow_steps.step_back(db, actor=desk.tech, session_id=walk.id)


async def test_walking_a_captured_proposal_follows_its_tree(db, desk):
    tree = {k: v for k, v in SIGN_IN_FLOW.items() if k in ("format", "start", "nodes")}
    proposal = FlowProposal(
        account_id=desk.owner.account_id,
        title="Sign-in fix",
        proposed_flow_data={"tree_structure": tree, "match_keywords": []},
    )
    db.add(proposal)
    await db.commit()
    walk = await walk_start.start_proposal_session(db, actor=desk.tech, ticket_id="T-2", proposal_id=proposal.id)
    assert (await flow_steps.walk_document(db, actor=desk.tech, session_id=walk.id))["nodes"] == tree["nodes"]
    node = await flow_steps.answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer="yes")
    assert node["id"] == "web"


async def test_an_adhoc_session_walks_no_flow(db, desk):
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")
    with pytest.raises(InvalidState, match="adhoc"):
        await flow_steps.current_flow_node(db, actor=desk.tech, session_id=walk.id)


async def test_another_account_cannot_read_or_walk_the_session(db, desk):
    walk = await start_walk(db, desk)
    other = await make_desk(db, name="Fabrikam", domain="fabrikam.test")
    with pytest.raises(Exception, match="does not exist"):
        await flow_steps.current_flow_node(db, actor=other.tech, session_id=walk.id)
    with pytest.raises(Exception, match="does not exist"):
        await flow_steps.answer_flow_node(db, actor=other.tech, session_id=walk.id, answer="yes")


# --- property: any walk through any valid flow records exactly what the flow says -----------

LABELS = [None, ("Yes", "No"), ("Windows", "Mac"), ("In the office", "At home")]


@st.composite
def valid_flows(draw):
    """A random sound flow: a forward chain (so every node is reachable and can finish),
    questions branching to later nodes, terminals, or back to an earlier node (a loop
    that still has an exit)."""
    size = draw(st.integers(1, 7))
    ids = [f"n{i}" for i in range(size)]
    nodes = []
    used_terminals = {"done"}
    for i, node_id in enumerate(ids):
        forward = ids[i + 1] if i + 1 < size else "done"
        if draw(st.booleans()):
            choices = [*ids[i + 1 :], "done", "esc", *ids[:i]]
            other = draw(st.sampled_from(choices))
            used_terminals.add(other) if other in ("done", "esc") else None
            yes, no = (forward, other) if draw(st.booleans()) else (other, forward)
            node = {
                "id": node_id,
                "type": "question",
                "text": f"Check number {i}: is it working?",
                "yes": yes,
                "no": no,
            }
            labels = draw(st.sampled_from(LABELS))
            if labels:
                node["yes_label"], node["no_label"] = labels
        else:
            node = {"id": node_id, "type": "instruction", "text": f"Restart item {i}.", "next": forward}
        nodes.append(node)
    nodes.append({"id": "done", "type": "resolution", "text": "Resolved."})
    if "esc" in used_terminals:
        nodes.append({"id": "esc", "type": "escalate", "text": "Escalate."})
    return {"format": FORMAT, "title": f"Random flow {size}", "start": ids[0], "nodes": nodes}


moves = st.lists(st.sampled_from(["yes", "no", "back"]), max_size=14)


def test_any_walk_records_steps_that_match_the_flow(db_url):
    loop = asyncio.new_event_loop()
    engine, factory = loop.run_until_complete(open_store(db_url))
    counter = iter(range(1_000_000))

    async def make():
        async with factory() as db:
            return await make_desk(db)

    desk = loop.run_until_complete(make())

    async def walk_it(doc, plan):
        assert check_flow(doc) == [], doc
        async with factory() as db:
            flow = await library.import_flow_doc(db, actor=desk.owner, doc=doc, source="hypothesis", new_version=True)
            walk = await walk_start.start_flow_session(
                db, actor=desk.tech, ticket_id=f"PSA-{next(counter)}", ticket_kind="psa", flow_id=flow.id
            )
            model: list[tuple[str, str | None]] = []  # the live (node, answer) pairs we expect
            backs = 0
            node = await flow_steps.current_flow_node(db, actor=desk.tech, session_id=walk.id)
            for move in plan:
                expected_id = doc["start"]
                for node_id, answer in model:
                    expected_id = next_node_id(node_by_id(doc, node_id), answer)
                assert node["id"] == expected_id
                if move == "back":
                    if not model:
                        with pytest.raises(InvalidState):
                            await flow_steps.step_back(db, actor=desk.tech, session_id=walk.id)
                        continue
                    node = await flow_steps.step_back(db, actor=desk.tech, session_id=walk.id)
                    model.pop()
                    backs += 1
                    continue
                if node["type"] in TERMINAL_NODE_TYPES:
                    break
                answer = move if node["type"] == "question" else None
                node = await flow_steps.answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer=answer)
                model.append((expected_id, answer))
            stored = await walk_core.get_session(db, actor=desk.tech, session_id=walk.id)
            path = await path_of(db, stored)
            assert len(path) == len(model) + backs
            assert sum(1 for s in path if s.get("undone")) == backs
            live = live_steps(read_path(path))
            assert [(s.node_id, s.answer) for s in live] == model
            for step in path:
                source = node_by_id(doc, step["node_id"])
                assert step["question"] == source["text"] and step["node_type"] == source["type"]
                if source["type"] == "question":
                    yes_label, no_label = source.get("yes_label", "Yes"), source.get("no_label", "No")
                    assert (step["yes_label"], step["no_label"]) == (yes_label, no_label)
                    assert step["answer_label"] == (yes_label if step["answer"] == "yes" else no_label)

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(doc=valid_flows(), plan=moves)
    def check(doc, plan):
        loop.run_until_complete(walk_it(doc, plan))

    try:
        check()
    finally:
        loop.run_until_complete(engine.dispose())
        loop.close()


async def test_an_answer_decided_on_a_stale_path_is_refused_not_recorded_twice(db, desk):
    flow = (await library.install_starter_library(db, actor=desk.owner))[0]
    walk = await walk_start.start_flow_session(db, actor=desk.tech, ticket_id="T-1", flow_id=flow.id)
    step = dict(actor=desk.tech, session_id=walk.id, node_id="n", question="q", answer="yes", version=walk.version)
    await walk_steps.record_step(db, **step)
    with pytest.raises(InvalidState, match="moved on in another window"):
        await walk_steps.record_step(db, **step)  # a second window that saw the same, empty path
    assert len(await path_of(db, await walk_core.get_session(db, actor=desk.tech, session_id=walk.id))) == 1


async def test_a_node_rewritten_in_the_database_after_its_import_is_checked_when_walked(db, desk):
    """Issue 19: a flow node rewritten by raw SQL to an unsafe step is never shown to the tech."""
    from rflow_tui.models import Flow

    walk = await start_walk(db, desk)
    flow = (await db.exec(select(Flow).where(Flow.id == walk.flow_id))).one()
    doc = dict(flow.flow_data)
    doc["nodes"] = [
        {**node, "text": "Disable Microsoft Defender real-time protection, then reboot. Did it help?"}
        if node["id"] == "kind"
        else node
        for node in doc["nodes"]
    ]
    flow.flow_data = doc
    db.add(flow)
    await db.commit()
    node = await flow_steps.current_flow_node(db, actor=desk.tech, session_id=walk.id)
    assert node["type"] == "escalate" and "breaks a safety rule" in node["text"]
    assert "Defender" not in node["text"]  # the refusal names the rule, never quotes the step
    with pytest.raises(ServiceError):
        await flow_steps.answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer="yes")
