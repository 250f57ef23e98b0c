"""The note a walk on a PSA ticket queues: its transcript as plain text, laid out for a
person reading the ticket in the PSA (steps with the answers given, notes, the outcome)."""

from __future__ import annotations

from sqlmodel import select

from rflow_tui.models import Flow, PsaOutboxItem
from rflow_tui.services.library import import_flow_doc
from rflow_tui.services.tickets import add_ticket
from rflow_tui.services.walks import endings as walk_endings
from rflow_tui.services.walks import flow_steps
from rflow_tui.services.walks import start as walk_start
from rflow_tui.services.walks import steps as walk_steps
from tests.tui_support import SMALL_FLOW


async def test_a_resolved_flow_walk_becomes_a_plain_text_note(db, desk):
    await import_flow_doc(db, actor=desk.owner, doc=SMALL_FLOW, source="test")
    await add_ticket(
        db,
        actor=desk.tech,
        ticket_id="101",
        subject="Outlook *will* not open",
        ticket_kind="psa",
        psa_system="connectwise",
    )
    flow = (await db.exec(select(Flow))).one()
    walk = await walk_start.start_flow_session(db, actor=desk.tech, ticket_id="101", flow_id=flow.id, ticket_kind="psa")
    for answer in ("yes", None, "back", None, "yes"):
        if answer == "back":
            await flow_steps.step_back(db, actor=desk.tech, session_id=walk.id)
        else:
            await flow_steps.answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer=answer)
    await walk_steps.update_notes(db, actor=desk.tech, session_id=walk.id, notes=["on VPN\nfrom home"])
    await walk_endings.resolve(
        db, actor=desk.tech, session_id=walk.id, helpful=True, resolution_notes="disabled the _Zoom_ add-in"
    )
    await db.rollback()
    note = (await db.exec(select(PsaOutboxItem.note))).one()
    assert note.startswith(f"rflow walk {walk.id} on ticket 101: resolved\n\nSubject: Outlook *will* not open\n")
    assert "Technician: Tina Tech <tech@contoso.test>" in note
    assert (
        "Steps:\n"
        "1. Does the user sign in with a Microsoft account or a local account? -> Microsoft account\n"
        "2. Start Outlook in safe mode (outlook.exe /safe). -> done (stepped back; not counted)\n"
        "3. Start Outlook in safe mode (outlook.exe /safe). -> done\n"
        "4. Does Outlook open in safe mode? -> Yes\n"
    ) in note
    assert "Flow end: Disable the faulty add-in and confirm with the user." in note
    assert "Notes:\n- on VPN\n   from home\n" in note
    assert note.endswith("Resolved. Helpful walk: yes\nResolution notes: disabled the _Zoom_ add-in\n")
