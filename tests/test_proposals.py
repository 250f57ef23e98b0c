"""The flywheel's review step: a helpful AI walk becomes a proposal; engineers approve it
into a flow (or a new version of one) or reject it with a reason."""

from __future__ import annotations

import copy

import pytest
from sqlmodel import select

from rflow_tui.models import AuditLog, FlowProposal
from rflow_tui.services import library, proposals
from rflow_tui.services.errors import AccessDenied, InvalidState, ValidationFailed
from rflow_tui.services.library import FlowProblems
from rflow_tui.services.users import update_user
from rflow_tui.services.walks import ai_steps
from rflow_tui.services.walks import endings as walk_endings
from rflow_tui.services.walks import flow_steps as flow_steps
from rflow_tui.services.walks import start as walk_start
from tests.conftest import make_desk
from tests.fakes import ScriptedGenerator

WALK = [
    {
        "id": "acct",
        "type": "question",
        "text": "Microsoft account or local account?",
        "yes_label": "Microsoft account",
        "no_label": "Local account",
    },
    {"id": "reset", "type": "instruction", "text": "Reset it from the sign-in screen's security questions."},
    {"id": "works", "type": "question", "text": "Can the user sign in now?"},
    {"id": "end", "type": "resolution", "text": "Resolved."},
]


async def captured_proposal(db, desk, ticket="T-1") -> FlowProposal:
    """Run an AI-built walk to a helpful resolution: the flywheel stores a proposal."""
    walk = await walk_start.start_ai_build_session(
        db, actor=desk.tech, ticket_id=ticket, category="account", problem_text="Cannot sign in to laptop"
    )
    gen = ScriptedGenerator(*WALK)
    node = await ai_steps.advance_ai_build(db, actor=desk.tech, session_id=walk.id, generator=gen, judge=None)
    node = await ai_steps.advance_ai_build(
        db,
        actor=desk.tech,
        session_id=walk.id,
        generator=gen,
        judge=None,
        node_id=node["id"],
        token=node["token"],
        answer="no",
    )
    node = await ai_steps.advance_ai_build(
        db, actor=desk.tech, session_id=walk.id, generator=gen, judge=None, node_id=node["id"], token=node["token"]
    )
    await ai_steps.advance_ai_build(
        db,
        actor=desk.tech,
        session_id=walk.id,
        generator=gen,
        judge=None,
        node_id=node["id"],
        token=node["token"],
        answer="yes",
    )
    await walk_endings.resolve(
        db, actor=desk.tech, session_id=walk.id, helpful=True, resolution_notes="Local account reset"
    )
    (proposal,) = [p for p in await proposals.list_pending(db, actor=desk.engineer) if p.source_session_id == walk.id]
    return proposal


async def test_pending_proposals_are_listed_for_everyone_on_the_desk_only(db, desk):
    proposal = await captured_proposal(db, desk)
    assert proposal.source_session_id and proposal.status == "pending"
    source = await proposals.source_session(db, actor=desk.engineer, proposal=proposal)
    assert (source.status, source.helpful, source.resolution_notes) == ("resolved", True, "Local account reset")
    assert proposals.proposal_tree(proposal)["start"] == "acct"
    assert [p.id for p in await proposals.list_pending(db, actor=desk.tech)] == [proposal.id]
    other = await make_desk(db, name="Fabrikam", domain="fabrikam.test")
    assert await proposals.list_pending(db, actor=other.engineer) == []
    with pytest.raises(Exception, match="does not exist"):
        await proposals.get_proposal(db, actor=other.engineer, proposal_id=proposal.id)


async def test_approving_makes_a_flow_that_walks_the_captured_branches(db, desk):
    proposal = await captured_proposal(db, desk)
    flow = await proposals.approve(db, actor=desk.engineer, proposal_id=proposal.id, title="Local account sign-in")
    assert (flow.title, flow.slug, flow.version, flow.category) == (
        "Local account sign-in",
        "local-account-sign-in",
        1,
        "account",
    )
    assert flow.source_proposal_id == proposal.id
    reviewed = await proposals.get_proposal(db, actor=desk.engineer, proposal_id=proposal.id)
    assert reviewed.status == "approved" and reviewed.reviewed_by_user_id == desk.engineer.id
    assert await proposals.list_pending(db, actor=desk.engineer) == []
    entry = (await db.exec(select(AuditLog).where(AuditLog.action == "proposal.approve"))).one()
    assert entry.details["flow_id"] == flow.id

    # The next tech walks it without an LLM, and the labels survived the trip.
    walk = await walk_start.start_flow_session(db, actor=desk.tech, ticket_id="T-2", flow_id=flow.id)
    node = await flow_steps.current_flow_node(db, actor=desk.tech, session_id=walk.id)
    assert (node["text"], node["yes_label"], node["no_label"]) == (
        WALK[0]["text"],
        "Microsoft account",
        "Local account",
    )
    node = await flow_steps.answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer="no")
    node = await flow_steps.answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer=None)
    node = await flow_steps.answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer="yes")
    assert node["type"] == "resolution"


async def test_approving_into_an_existing_flow_adds_a_version(db, desk):
    first = await captured_proposal(db, desk, ticket="T-1")
    flow = await proposals.approve(db, actor=desk.owner, proposal_id=first.id, title="Sign-in help")
    second = await captured_proposal(db, desk, ticket="T-2")
    # Same content: approving returns the current version untouched.
    same = await proposals.approve(db, actor=desk.admin, proposal_id=second.id, target_flow_id=flow.id)
    assert same.id == flow.id
    third = await captured_proposal(db, desk, ticket="T-3")
    third.proposed_flow_data = {**third.proposed_flow_data, "match_keywords": ["local account"]}
    db.add(third)
    await db.commit()
    newer = await proposals.approve(db, actor=desk.admin, proposal_id=third.id, target_flow_id=flow.id)
    assert (newer.slug, newer.version, newer.title) == (flow.slug, 2, "Sign-in help")
    assert newer.match_keywords == ["local account"]
    assert [f.id for f in await library.list_flows(db, actor=desk.tech)] == [newer.id]


async def test_title_slugs_never_clobber_an_existing_flow(db, desk):
    first = await captured_proposal(db, desk, ticket="T-1")
    second = await captured_proposal(db, desk, ticket="T-2")
    a = await proposals.approve(db, actor=desk.engineer, proposal_id=first.id, title="Sign-in help")
    with pytest.raises(ValidationFailed, match="belongs to an existing flow"):
        await proposals.approve(db, actor=desk.engineer, proposal_id=second.id, slug="sign-in-help")
    b = await proposals.approve(db, actor=desk.engineer, proposal_id=second.id, title="Sign-in help")
    assert (a.slug, b.slug) == ("sign-in-help", "sign-in-help-2") and b.version == 1


async def test_l1_techs_may_neither_approve_nor_reject(db, desk):
    proposal_id = (await captured_proposal(db, desk)).id
    await update_user(db, actor=desk.owner, email=desk.engineer.email, active=False)
    for actor in (desk.tech, desk.engineer):  # an L1 tech; an engineer deactivated since signing in
        with pytest.raises(AccessDenied):
            await proposals.approve(db, actor=actor, proposal_id=proposal_id)
        with pytest.raises(AccessDenied):
            await proposals.reject(db, actor=actor, proposal_id=proposal_id, reason="no")
    assert (await proposals.get_proposal(db, actor=desk.owner, proposal_id=proposal_id)).status == "pending"


async def test_reject_needs_a_reason_and_is_audited(db, desk):
    proposal = await captured_proposal(db, desk)
    with pytest.raises(ValidationFailed, match="say why"):
        await proposals.reject(db, actor=desk.engineer, proposal_id=proposal.id, reason="  ")
    rejected = await proposals.reject(
        db, actor=desk.engineer, proposal_id=proposal.id, reason="Duplicates the sign-in flow"
    )
    assert (rejected.status, rejected.review_reason) == ("rejected", "Duplicates the sign-in flow")
    entry = (await db.exec(select(AuditLog).where(AuditLog.action == "proposal.reject"))).one()
    assert entry.target_id == str(proposal.id) and entry.actor_user_id == desk.engineer.id
    with pytest.raises(InvalidState, match="already rejected"):
        await proposals.approve(db, actor=desk.engineer, proposal_id=proposal.id)
    with pytest.raises(InvalidState):
        await walk_start.start_proposal_session(db, actor=desk.tech, ticket_id="T-2", proposal_id=proposal.id)


async def test_an_unsafe_tree_is_refused_and_the_proposal_stays_pending(db, desk):
    proposal = await captured_proposal(db, desk)
    tree = copy.deepcopy(proposal.proposed_flow_data["tree_structure"])
    tree["nodes"][0]["yes"] = "nowhere"
    proposal.proposed_flow_data = {**proposal.proposed_flow_data, "tree_structure": tree}
    db.add(proposal)
    await db.commit()
    proposal_id = proposal.id
    with pytest.raises(FlowProblems, match=r"\$\.nodes\[0\]\.yes"):
        await proposals.approve(db, actor=desk.engineer, proposal_id=proposal_id)
    assert (await proposals.get_proposal(db, actor=desk.engineer, proposal_id=proposal_id)).status == "pending"
    assert await library.list_flows(db, actor=desk.engineer) == []


async def test_only_proposals_that_fit_the_ticket_are_offered_best_first(db, desk):
    from rflow_tui.models import FlowProposal
    from rflow_tui.services.proposals import match_proposals

    tree = {
        "tree_structure": {"start": "r", "nodes": [{"id": "r", "type": "resolution", "text": "ok"}]},
        "match_keywords": [],
    }
    for title, category in (
        ("Teams camera black: check the shutter", "collaboration"),
        ("Printer jammed on tray 2", "printing"),
        ("Camera driver after update", "hardware"),
    ):
        db.add(FlowProposal(account_id=desk.tech.account_id, title=title, category=category, proposed_flow_data=tree))
    await db.commit()
    ranked = await match_proposals(db, actor=desk.tech, subject="Teams camera is black", body="in every meeting")
    assert [p.title for p, _ in ranked] == ["Teams camera black: check the shutter", "Camera driver after update"]
