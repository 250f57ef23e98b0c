"""Transcripts for a PSA ticket: what was tried, with the labels chosen, and how it ended."""

from __future__ import annotations

import json

import pytest

from rflow_tui.models import Ticket
from rflow_tui.services import library
from rflow_tui.services.errors import NotFound
from rflow_tui.services.export import transcript_json, transcript_markdown
from rflow_tui.services.walks import endings as walk_endings
from rflow_tui.services.walks import flow_steps as flow_steps
from rflow_tui.services.walks import start as walk_start
from rflow_tui.services.walks import steps as walk_steps
from rflow_tui.services.walks.reads import read_transcript
from tests.conftest import make_desk
from tests.test_flow_walk import SIGN_IN_FLOW
from tests.walk_paths import put_path


async def resolved_walk(db, desk):
    flow = await library.import_flow_doc(db, actor=desk.owner, doc=SIGN_IN_FLOW, source="t")
    walk = await walk_start.start_flow_session(db, actor=desk.tech, ticket_id="T-1", flow_id=flow.id)
    await flow_steps.answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer="yes", note="wrong guess")
    await flow_steps.step_back(db, actor=desk.tech, session_id=walk.id)
    await flow_steps.answer_flow_node(
        db, actor=desk.tech, session_id=walk.id, answer="no", note="local account on the laptop"
    )
    await flow_steps.answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer=None)
    await flow_steps.answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer="yes")
    await walk_steps.update_notes(
        db, actor=desk.tech, session_id=walk.id, notes=["User on site", {"text": "Called back at 10:05"}]
    )
    await walk_endings.resolve(
        db, actor=desk.tech, session_id=walk.id, helpful=True, resolution_notes="Reset via security questions"
    )
    return walk


async def test_a_resolved_flow_walk_exports_everything_a_psa_ticket_needs(db, desk):
    walk = await resolved_walk(db, desk)
    t = await read_transcript(db, actor=desk.tech, session_id=walk.id)
    assert t["ticket"] == {
        "id": "T-1",
        "kind": "internal",
        "psa_system": None,
        "subject": "Outlook will not open",
        "requester": "",
    }
    assert t["tech"]["email"] == "tech@contoso.test" and t["tech"]["acting_as"] is None
    assert (t["kind"], t["status"], t["walked"]["title"]) == ("flow", "resolved", "Cannot sign in")
    assert [(s["node_id"], s["answer_label"], s["undone"]) for s in t["steps"]] == [
        ("kind", "Microsoft account", True),
        ("kind", "Local account", False),
        ("local", None, False),
        ("works", "Yes", False),
    ]
    assert t["steps"][1]["note"] == "local account on the laptop"
    assert t["notes"] == ["User on site", "Called back at 10:05"]
    assert t["resolution"] == {"helpful": True, "notes": "Reset via security questions"}
    assert t["escalation"] is None and t["current_node"]["node_type"] == "resolution"

    assert json.loads(transcript_json(t)) == t
    md = transcript_markdown(t)
    assert "- **Ticket:** T-1 (internal)" in md
    assert "2. Microsoft account or local account? -> **Local account**" in md
    assert "~~Microsoft account or local account? -> **Microsoft account**~~ _(stepped back" in md
    assert "   - Note: local account on the laptop" in md
    assert "### Resolution" in md and "Reset via security questions" in md
    assert "### Notes" in md and "- Called back at 10:05" in md


async def test_an_escalated_ai_walk_exports_its_reason_and_chosen_labels(db, desk):
    walk = await walk_start.start_ai_build_session(
        db, actor=desk.coverage, ticket_id="T-2", category="printing", problem_text="Printer offline"
    )
    path = [
        {
            "node_type": "question",
            "id": "q1",
            "text": "Windows or Mac?",
            "answer": "no",
            "l1_note": None,
            "answer_label": "Mac",
            "yes_label": "Windows",
            "no_label": "Mac",
        },
    ]
    await put_path(db, walk, path)
    await walk_endings.escalate(
        db, actor=desk.coverage, session_id=walk.id, reason="Needs a new fuser", reason_category="hardware"
    )
    t = await read_transcript(db, actor=desk.engineer, session_id=walk.id)
    assert t["kind"] == "ai_build" and t["tech"]["acting_as"] == "l1_coverage"
    assert t["steps"][0]["answer_label"] == "Mac"
    assert t["escalation"] == {
        "reason_category": "hardware",
        "reason_category_label": "Hardware fault or replacement",
        "reason": "Needs a new fuser",
    }
    md = transcript_markdown(t)
    assert "Windows or Mac? -> **Mac**" in md and "### Escalation" in md and "engineer covering L1" in md


async def test_untrusted_text_cannot_smuggle_escapes_or_markdown(db, desk):
    db.add(
        Ticket(
            account_id=desk.owner.account_id,
            ticket_id="T-9",
            subject="Help \x1b[2J\x1b]8;;http://evil\x07click\x1b]8;;\x07 # [link](http://x)",
            body="",
        )
    )
    await db.commit()
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-9")
    await walk_steps.update_notes(db, actor=desk.tech, session_id=walk.id, notes=["<script>x</script>\x07\n## heading"])
    await walk_endings.escalate(db, actor=desk.tech, session_id=walk.id, reason="n/a\x1b[31m", reason_category="other")
    t = await read_transcript(db, actor=desk.tech, session_id=walk.id)
    text = transcript_json(t) + transcript_markdown(t)
    assert "\x1b" not in text and "\x07" not in text
    md = transcript_markdown(t)
    assert "\\[link\\](http://x)" in md and "\\<script\\>" in md
    assert "\n## heading" not in md and "_No steps were recorded._" in md


async def test_another_account_cannot_export_the_session(db, desk):
    walk = await resolved_walk(db, desk)
    other = await make_desk(db, name="Fabrikam", domain="fabrikam.test")
    with pytest.raises(NotFound):
        await read_transcript(db, actor=other.owner, session_id=walk.id)
