"""Choice nodes in authored flows: 2 to 6 labelled options, answered with keys 1 to 6,
and every reader of a walk (transcript, export, proposals, statistics, diagrams) knows them."""

from __future__ import annotations

import copy

import pytest

from rflow_tui.domain.walk_step import StepSource, WalkStep, read_path
from rflow_tui.flows.check import check_flow, review_flow
from rflow_tui.flows.diagram import to_mermaid
from rflow_tui.flows.format import FORMAT
from rflow_tui.flows.walked_path import normalize_walked_path
from rflow_tui.services import library
from rflow_tui.services.errors import ValidationFailed
from rflow_tui.services.export import transcript_markdown
from rflow_tui.services.flow_stats import flow_stats
from rflow_tui.services.walks import core as walk_core
from rflow_tui.services.walks import endings as walk_endings
from rflow_tui.services.walks import flow_steps as flow_steps
from rflow_tui.services.walks import start as walk_start
from rflow_tui.services.walks.reads import read_transcript
from tests.test_tui_walk_keys import stored_walk
from tests.tui_support import make_app, open_resumed_walk, seed_tickets, wait_for
from tests.walk_paths import path_of

OS_FLOW = {
    "format": FORMAT,
    "title": "VPN will not connect",
    "slug": "vpn-will-not-connect",
    "start": "os",
    "nodes": [
        {
            "id": "os",
            "type": "choice",
            "text": "Which computer is the user on?",
            "options": [
                {"label": "Windows laptop", "next": "win"},
                {"label": "MacBook", "next": "mac"},
                {"label": "Phone", "next": "phone"},
            ],
        },
        {"id": "win", "type": "instruction", "text": "Restart the VPN client from the tray.", "next": "done"},
        {"id": "mac", "type": "instruction", "text": "Quit and reopen the VPN app.", "next": "done"},
        {"id": "phone", "type": "escalate", "text": "Phones are the mobile team's: escalate."},
        {"id": "done", "type": "resolution", "text": "Connected: close the ticket."},
    ],
}


def with_options(options):
    doc = copy.deepcopy(OS_FLOW)
    doc["nodes"][0]["options"] = options
    return doc


def test_a_choice_flow_is_valid_and_each_option_is_checked_where_it_is():
    assert check_flow(OS_FLOW, require_title=True) == []
    one = with_options([{"label": "Windows", "next": "win"}])
    too_few = check_flow(one)[0]  # (the nodes its missing options led to are unreachable too)
    assert str(too_few).startswith('$.nodes[0].options (node "os"): a choice has 2 to 6')
    seven = with_options([{"label": f"Option {n}", "next": "win"} for n in range(7)])
    assert "2 to 6 options" in check_flow(seven)[0].message
    broken = with_options(
        [{"label": "Windows", "next": "nowhere"}, {"label": "WINDOWS", "next": "mac"}, {"label": "Mac", "go": "x"}]
    )
    found = {p.path: p.message for p in review_flow(broken).problems}
    assert "already an option here" in found["$.nodes[0].options[1].label"]
    assert found["$.nodes[0].options[2]"].startswith("an option is exactly")
    valid_labels = with_options([{"label": "Windows", "next": "nowhere"}, {"label": "Mac", "next": "mac"}])
    (target,) = [p for p in review_flow(valid_labels).problems if p.path.endswith(".next")]
    assert str(target) == "$.nodes[0].options[0].next (node \"os\"): target 'nowhere' is not a node in this flow"


def test_two_options_leading_to_one_node_are_a_warning():
    doc = with_options(
        [{"label": "Windows", "next": "win"}, {"label": "Surface", "next": "win"}, *OS_FLOW["nodes"][0]["options"][1:]]
    )
    review = review_flow(doc)
    assert review.problems == [] and "more than one answer leads to 'win'" in review.warnings[0].message


def test_an_unsafe_option_label_breaks_the_safety_rules_like_a_question_label():
    doc = with_options(
        [{"label": "Turn off Defender real-time protection", "next": "win"}, *OS_FLOW["nodes"][0]["options"][1:]]
    )
    assert any("breaks safety rule" in p.message for p in check_flow(doc))


async def test_walking_a_choice_follows_the_picked_option_and_records_its_label(db, desk):
    flow = await library.import_flow_doc(db, actor=desk.owner, doc=OS_FLOW, source="test")
    walk = await walk_start.start_flow_session(db, actor=desk.tech, ticket_id="T-1", flow_id=flow.id)
    with pytest.raises(ValidationFailed, match="one of 1, 2, 3"):
        await flow_steps.answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer="yes")
    nxt = await flow_steps.answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer="2", note="M1 Air")
    assert nxt["id"] == "mac"
    (step,) = read_path(await path_of(db, await walk_core.get_session(db, actor=desk.tech, session_id=walk.id)))
    assert (step.is_choice, step.answer, step.answer_label, step.options) == (
        True,
        "2",
        "MacBook",
        ("Windows laptop", "MacBook", "Phone"),
    )
    await flow_steps.answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer=None)
    transcript = await read_transcript(db, actor=desk.owner, session_id=walk.id)
    assert transcript["steps"][0]["answer_label"] == "MacBook"
    assert "Which computer is the user on? -> **MacBook**" in transcript_markdown(transcript)
    await walk_endings.resolve(db, actor=desk.tech, session_id=walk.id, helpful=True, resolution_notes="ok")
    stats = await flow_stats(db, actor=desk.engineer, slug="vpn-will-not-connect")
    assert dict(stats.nodes[0].answers) == {"MacBook": 1}


def test_a_choice_step_round_trips_and_normalises_into_a_choice_node():
    step = WalkStep.choice(StepSource.FLOW, "os", "Which computer?", ["Windows", "Mac", "Phone"], "3", note="n")
    assert WalkStep.from_json(step.to_json()) == step
    with pytest.raises(ValueError):
        WalkStep.choice(StepSource.FLOW, "os", "Which?", ["Windows", "Mac"], "3")
    tree = normalize_walked_path([step])
    (node,) = [n for n in tree["nodes"] if n["id"] == "os"]
    assert [(o["label"], o["next"]) for o in node["options"]] == [
        ("Windows", "uncharted"),
        ("Mac", "uncharted"),
        ("Phone", "resolved"),
    ]
    assert check_flow(tree) == []


def test_the_diagram_draws_every_option_under_its_label():
    mermaid = to_mermaid(OS_FLOW)
    assert '    n0 -->|"Windows laptop"| n1' in mermaid and '    n0 -->|"Phone"| n3' in mermaid


async def test_the_walk_screen_offers_one_numbered_button_per_option(store, db, desk):
    await seed_tickets(db, desk.tech.account_id, [("T-600", "VPN will not connect", "Bob")])
    flow = await library.import_flow_doc(db, actor=desk.owner, doc=OS_FLOW, source="test")
    walk = await walk_start.start_flow_session(db, actor=desk.tech, ticket_id="T-600", flow_id=flow.id)
    app = make_app(store, desk.tech)
    async with app.run_test(size=(130, 40)) as pilot:
        await open_resumed_walk(pilot, app)
        await wait_for(pilot, lambda: app.screen.query("#answer-3"))
        labels = [" ".join(str(button.label).split()) for button in app.screen.query("AnswerButton")]
        assert labels == ["1 Windows laptop", "2 MacBook", "3 Phone"]
        await pilot.press("y", "5")  # not options of this choice: nothing happens
        await pilot.pause(0.2)
        assert (await path_of(db, await stored_walk(db, walk.id))) == []
        await pilot.press("3")
        await wait_for(pilot, lambda: app.screen.query("#do-escalate"))
    (step,) = read_path(await path_of(db, await stored_walk(db, walk.id)))
    assert step.answer_label == "Phone"
