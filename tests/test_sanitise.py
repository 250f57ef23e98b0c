"""One sanitiser on the way in: what it removes, what it keeps, and the NUL bytes it refuses
in every service that stores free text."""

from __future__ import annotations

import json
import sys
import unicodedata

import pytest
from sqlmodel import select

from rflow_tui.ai.errors import InvalidNodeError
from rflow_tui.ai.validate import validate_node
from rflow_tui.flows.check import check_flow
from rflow_tui.models import L1WalkSession, Ticket
from rflow_tui.services import proposals
from rflow_tui.services.errors import ValidationFailed
from rflow_tui.services.library import FlowProblems, import_flow_doc
from rflow_tui.services.tickets import add_ticket, import_tickets
from rflow_tui.services.users import add_user, create_account
from rflow_tui.services.walks import endings as walk_endings
from rflow_tui.services.walks import start as walk_start
from rflow_tui.services.walks import steps as walk_steps
from rflow_tui.text import INVISIBLE, clean, inert_json, looks_blank, same_label
from tests.tui_support import SMALL_FLOW

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


def test_clean_removes_escape_sequences_c0_c1_and_bidi_but_keeps_lines_and_tabs():
    raw = "a\x1b]52;c;cm0=\x07b\x1b[2Jc\x9b31md\x9d0;t\x9ce\x1bP1$qm\x1b\\f\x07\x08\x7f" + BIDI + "\tg\r\nh"
    assert clean(raw) == "abcdef\tg\nh"


def test_single_line_fields_also_lose_invisible_characters_and_line_breaks():
    assert clean("Ye\u200bs \u2060 \ufeffplease\n\tnow\u3164", single_line=True) == "Yes please now"
    assert clean("a\u200bb") == "a\u200bb"  # a multi-line note keeps them (ZWJ emoji, scripts)


def test_text_is_stored_in_nfc():
    assert clean("Cafe\u0301") == "Caf\u00e9" and clean("Cafe\u0301", single_line=True) == "Caf\u00e9"


def test_every_unicode_format_character_counts_as_invisible():
    """The table in text.py is written out for start-up speed; it must cover category Cf."""
    missing = [
        hex(c)
        for c in range(sys.maxunicode + 1)
        if unicodedata.category(chr(c)) == "Cf" and not INVISIBLE.match(chr(c))
    ]
    assert missing == []


def test_labels_that_read_the_same_are_the_same():
    assert same_label("Yes", "Ye\u200bs") and same_label("Yes", "ＹＥＳ") and not same_label("Yes", "No")
    assert looks_blank("\u200b \u3164\u2800") and not looks_blank("x")


def test_inert_json_escapes_what_json_dumps_leaves_raw_and_loses_nothing():
    value = {"t": "a\x7f\x9b\u202e\u2066b\x1b]52;"}
    text = inert_json(value, indent=2)
    assert not any(ch in text for ch in "\x7f\x9b\u202e\u2066\x1b") and json.loads(text) == value


# --- labels -------------------------------------------------------------------------


def test_ai_node_labels_equal_after_normalisation_are_refused():
    with pytest.raises(InvalidNodeError, match="labels must differ"):
        validate_node({"id": "q", "type": "question", "text": "Works?", "yes_label": "Yes", "no_label": "Ye\u200bs"})


def test_ai_node_label_of_only_invisible_characters_is_refused():
    with pytest.raises(InvalidNodeError, match="looks blank"):
        validate_node({"id": "q", "type": "question", "text": "Works?", "yes_label": "\u200b\u3164", "no_label": "No"})


def test_ai_node_label_loses_zero_width_characters():
    node = validate_node(
        {"id": "q", "type": "question", "text": "Which?", "yes_label": "Win\u200bdows", "no_label": "Mac\u202e"}
    )
    assert (node["yes_label"], node["no_label"]) == ("Windows", "Mac")


def flow(**node0) -> dict:
    doc = json.loads(json.dumps(SMALL_FLOW))
    doc["nodes"][0].update(node0)
    return doc


def problem_at(doc: dict, path: str) -> str:
    return " / ".join(p.message for p in check_flow(doc, require_title=True) if p.path == path)


def test_flow_labels_equal_after_normalisation_are_duplicates():
    assert "labels must differ" in problem_at(flow(yes_label="Yes", no_label="Ye\u200bs"), "$.nodes[0].no_label")


def test_flow_label_of_only_invisible_characters_is_refused():
    assert "looks blank" in problem_at(flow(yes_label="\u200b\u200b"), "$.nodes[0].yes_label")


@pytest.mark.parametrize("char", ["\u202e", "\u2066", "\u200f", "\u061c"])
def test_flow_text_with_a_bidi_control_is_refused(char):
    assert "bidi" in problem_at(flow(text=f"Restart the {char}router"), "$.nodes[0].text")
    doc = flow()
    doc["title"] = f"Outlook{char}"
    assert "bidi" in problem_at(doc, "$.title")


def test_flow_with_a_nul_byte_says_so():
    assert "NUL byte" in problem_at(flow(text="Restart\x00"), "$.nodes[0].text")


async def test_imported_flow_is_stored_clean(db, desk):
    doc = flow(yes_label="Micro\u200bsoft account")
    doc["title"] = "Outlook\u200b will not open"
    stored = await import_flow_doc(db, actor=desk.engineer, doc=doc, source="f.json")
    assert stored.title == "Outlook will not open"
    assert stored.flow_data["nodes"][0]["yes_label"] == "Microsoft account"


async def test_flow_import_refuses_a_bidi_override(db, desk):
    with pytest.raises(FlowProblems, match="bidi"):
        await import_flow_doc(db, actor=desk.engineer, doc=flow(text="Delete \u202eexe.dab"), source="f.json")


# --- NUL bytes, field by field --------------------------------------------------------


async def test_account_and_user_fields_with_a_nul_byte_are_refused(db, desk):
    with pytest.raises(ValidationFailed, match="the account name contains a NUL byte"):
        await create_account(db, name="Acme\x00", owner_email="o@acme.test")
    with pytest.raises(ValidationFailed, match="the name contains a NUL byte"):
        await add_user(db, actor=desk.owner, email="n@contoso.test", name="Nu\x00ll")
    with pytest.raises(ValidationFailed, match="the email contains a NUL byte"):
        await add_user(db, actor=desk.owner, email="n\x00@contoso.test")


@pytest.mark.parametrize("field", ["ticket_id", "subject", "body", "requester", "category"])
async def test_ticket_fields_with_a_nul_byte_are_refused(db, desk, field):
    fields = {"ticket_id": "T-60", "subject": "Printer", field: f"bad\x00{field}"}
    with pytest.raises(ValidationFailed, match=f"{field} contains a NUL byte"):
        await add_ticket(db, actor=desk.owner, **fields)


async def test_import_with_a_nul_byte_names_the_row_and_imports_nothing(db, desk):
    rows = [(2, {"ticket_id": "T-70", "subject": "fine"}), (3, {"ticket_id": "T-71", "subject": "bad\x00"})]
    report = await import_tickets(db, actor=desk.owner, rows=rows, source="t.csv")
    assert report.imported == 0 and report.errors == [
        "t.csv line 3: subject contains a NUL byte; remove it and try again"
    ]
    assert (await db.exec(select(Ticket).where(Ticket.ticket_id == "T-70"))).first() is None


async def test_walk_text_with_a_nul_byte_is_refused_and_nothing_changes(db, desk):
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")
    attempts = [
        (walk_steps.update_notes, {"notes": ["spilled\x00coffee"]}, "the session notes"),
        (walk_endings.escalate, {"reason": "dead\x00", "reason_category": "hardware"}, "the escalation reason"),
        (walk_endings.resolve, {"helpful": True, "resolution_notes": "fixed\x00"}, "the resolution notes"),
    ]
    for operation, fields, what in attempts:
        with pytest.raises(ValidationFailed, match=f"{what} contains a NUL byte"):
            await operation(db, actor=desk.tech, session_id=walk.id, **fields)
    db.expire_all()
    stored = (await db.exec(select(L1WalkSession).where(L1WalkSession.id == walk.id))).one()
    assert stored.status == "active" and stored.walk_notes == []


async def test_escalating_without_a_walk_with_a_nul_byte_is_refused(db, desk):
    with pytest.raises(ValidationFailed, match="the escalation reason contains a NUL byte"):
        await walk_endings.escalate_without_walk(
            db, actor=desk.tech, ticket_id="T-2", reason="x\x00", reason_category="other"
        )


async def test_rejecting_a_proposal_with_a_nul_byte_is_refused(db, desk):
    from rflow_tui.models import FlowProposal

    proposal = FlowProposal(
        account_id=desk.owner.account_id, title="P", proposed_flow_data={"tree_structure": SMALL_FLOW}
    )
    db.add(proposal)
    await db.commit()
    with pytest.raises(ValidationFailed, match="the reason contains a NUL byte"):
        await proposals.reject(db, actor=desk.engineer, proposal_id=proposal.id, reason="no\x00")


async def test_walk_text_is_stored_clean(db, desk):
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")
    await walk_steps.update_notes(db, actor=desk.tech, session_id=walk.id, notes=["fan\x1b]52;c;eA==\x07 noise\u202e"])
    walk = await walk_endings.escalate(
        db, actor=desk.tech, session_id=walk.id, reason="dead \x1b[2Jfan", reason_category="hardware"
    )
    assert walk.walk_notes == ["fan noise"] and walk.escalation_reason == "dead fan"


async def test_a_nul_byte_in_an_escalation_reason_is_refused_on_screen_and_the_reason_kept(store, db, desk):
    """It used to close the walk screen (PostgreSQL) or be stored as is (SQLite)."""
    from tests.test_tui_quit import open_resumed_walk
    from tests.tui_support import make_app, wait_for

    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")
    app = make_app(store, desk.tech)
    async with app.run_test(size=(130, 40)) as pilot:
        await open_resumed_walk(pilot, app)
        await pilot.press("escape", "e")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "EscalateDialog")
        app.screen.query_one("Select").value = "hardware"
        app.screen.query_one("#escalation-reason").text = "Fan dead\x00 since Monday"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: any("NUL byte" in str(n.message) for n in app._notifications))
        assert app.screen.__class__.__name__ == "WalkScreen"
        await pilot.press("e")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "EscalateDialog")
        assert "Fan dead" in app.screen.query_one("#escalation-reason").text  # what was typed is still there
    db.expire_all()
    stored = (await db.exec(select(L1WalkSession).where(L1WalkSession.id == walk.id))).one()
    assert stored.status == "active"
