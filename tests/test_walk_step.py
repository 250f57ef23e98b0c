"""One shape for a walk step: each writer's stored JSON keeps the SPEC's field names,
and rows written by an older rflow (no node_type, no labels) still read, export and walk on."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from rflow_tui.domain.enums import Answer, NodeType
from rflow_tui.domain.walk_step import StepSource, WalkStep, live_steps, read_path
from rflow_tui.flows.check import check_flow
from rflow_tui.flows.format import node_by_id
from rflow_tui.flows.walked_path import normalize_walked_path
from rflow_tui.services.export import transcript_markdown
from rflow_tui.services.walks import core as walk_core
from rflow_tui.services.walks import flow_steps as flow_steps
from rflow_tui.services.walks.reads import read_transcript
from tests.test_flow_walk import start_walk
from tests.walk_paths import path_of, put_path, steps_of

QUESTION = {
    "id": "acct",
    "type": "question",
    "text": "Microsoft or local?",
    "yes_label": "Microsoft",
    "no_label": "Local",
}


def test_each_writer_stores_the_spec_field_names():
    flow_step = WalkStep.question(
        StepSource.FLOW, "acct", "Microsoft or local?", "no", yes_label="Microsoft", no_label="Local"
    )
    assert flow_step.to_json() == {
        "node_id": "acct",
        "question": "Microsoft or local?",
        "answer": "no",
        "l1_note": None,
        "node_type": "question",
        "answer_label": "Local",
        "yes_label": "Microsoft",
        "no_label": "Local",
    }
    ai_step = WalkStep.answering(StepSource.AI, QUESTION, "yes", "on the laptop")
    assert ai_step.to_json() == {
        "node_type": "question",
        "id": "acct",
        "text": "Microsoft or local?",
        "answer": "yes",
        "l1_note": "on the laptop",
        "answer_label": "Microsoft",
        "yes_label": "Microsoft",
        "no_label": "Local",
    }
    assert WalkStep.instruction(StepSource.AI, "i1", "Restart it").to_json() == {
        "node_type": "instruction",
        "id": "i1",
        "text": "Restart it",
        "answer": None,
        "l1_note": None,
    }
    # The stored form reads back as the same step, and is plain JSON.
    for step in (flow_step, ai_step, flow_step.undo(datetime(2025, 1, 2, tzinfo=UTC))):
        assert WalkStep.from_json(json.loads(json.dumps(step.to_json()))) == step


def test_a_question_needs_a_yes_or_no_answer_and_defaults_its_labels():
    with pytest.raises(ValueError, match="'yes' or 'no'"):
        WalkStep.question(StepSource.FLOW, "q", "On?", "maybe")
    step = WalkStep.question(StepSource.AI, "q", "On?", "no")
    assert (step.yes_label, step.no_label, step.answer_label) == ("Yes", "No", "No")


def test_old_rows_without_node_type_or_labels_read_as_typed_steps():
    old = [
        {"node_id": "n1", "question": "Plugged in?", "answer": "yes", "l1_note": "it is"},
        {"node_id": "n2", "question": "Reseat the cable.", "answer": None, "l1_note": None},
        {"node_type": "question", "id": "q1", "text": "Lights on?", "answer": "no", "l1_note": None},
        {"node_id": "n3", "question": "Old undone", "answer": "no", "undone": True, "undone_at": "2025-01-01T00:00:00"},
        "not a step",
    ]
    steps = read_path(old)
    assert [(s.source, s.node_id, s.node_type, s.answer, s.answer_label) for s in steps] == [
        (StepSource.FLOW, "n1", NodeType.QUESTION, Answer.YES, "Yes"),
        (StepSource.FLOW, "n2", NodeType.INSTRUCTION, None, None),
        (StepSource.AI, "q1", NodeType.QUESTION, Answer.NO, "No"),
        (StepSource.FLOW, "n3", NodeType.QUESTION, Answer.NO, "No"),
    ]
    assert [s.node_id for s in live_steps(steps)] == ["n1", "n2", "q1"]
    tree = normalize_walked_path(steps)
    assert check_flow(tree) == [] and node_by_id(tree, "n1")["yes"] == "n2"


async def test_an_old_format_row_in_the_database_exports_and_walks_on(db, desk):
    """A walk stored before steps were typed: the transcript reads it and the walk continues."""
    walk = await start_walk(db, desk)
    old_path = [
        {"node_id": "kind", "question": "Microsoft account or local account?", "answer": "no", "l1_note": "old"}
    ]
    await put_path(db, walk, old_path)

    transcript = await read_transcript(db, actor=desk.tech, session_id=walk.id)
    assert [(s["node_id"], s["node_type"], s["answer_label"], s["note"]) for s in transcript["steps"]] == [
        ("kind", "question", "No", "old")
    ]
    assert "Microsoft account or local account? -> **No**" in transcript_markdown(transcript)

    node = await flow_steps.current_flow_node(db, actor=desk.tech, session_id=walk.id)
    assert node["id"] == "local"
    await flow_steps.answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer=None, node_id="local")
    back = await flow_steps.step_back(db, actor=desk.tech, session_id=walk.id)
    assert back["id"] == "local"
    stored = await walk_core.get_session(db, actor=desk.tech, session_id=walk.id)
    assert (await path_of(db, stored))[0] == old_path[0]  # steps are never rewritten: the old row stays as stored
    (old,) = [s for s in await steps_of(db, stored) if s.node_id == "kind"]
    assert (old.node_type, old.answer_label, old.yes_label, old.no_label) == ("question", "No", "Yes", "No")
    assert [(s.node_id, s.undone) for s in (await steps_of(db, stored))] == [("kind", False), ("local", True)]
