"""Snapshots of every screen, on a desk seeded the same way each time, clock frozen."""

from __future__ import annotations

import asyncio

import pytest

from rflow_tui.config import LLMSettings, Settings
from rflow_tui.db import open_store
from rflow_tui.services.library import import_flow_doc
from rflow_tui.services.walks import ai_steps
from rflow_tui.services.walks import endings as walk_endings
from rflow_tui.services.walks import start as walk_start
from rflow_tui.services.walks import steps as walk_steps
from rflow_tui.tui import format as tui_format
from rflow_tui.tui.app import RflowApp
from tests.conftest import make_desk
from tests.tui_support import FROZEN_NOW, INJECTION, SMALL_FLOW, seed_tickets, wait_for

SIZE = (120, 34)


@pytest.fixture
def snapshot(snapshot):
    """One picture per screen, whichever database drew it: both backends must match it."""
    snapshot.test_location.testname = snapshot.test_location.methodname
    return snapshot


@pytest.fixture(autouse=True)
def steady_cursors(monkeypatch):
    """A focused field shows its cursor, steadily: a blink caught half-way made pictures differ."""
    from textual.widgets import Input, TextArea

    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)
    monkeypatch.setattr(TextArea, "_toggle_cursor_blink_visible", lambda self: None)


@pytest.fixture(autouse=True)
def frozen_clock_and_no_key(monkeypatch):
    monkeypatch.setattr(tui_format, "now", lambda: FROZEN_NOW)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)  # the AI is unavailable, whatever the machine has


def seed(url: str, steps=None) -> None:
    async def go():
        engine, open_db = await open_store(url)
        async with open_db() as db:
            desk = await make_desk(db)
            await seed_tickets(
                db,
                desk.tech.account_id,
                [
                    ("T-1001", "Outlook will not open after the Monday update", "Bob Baker"),
                    ("T-1002", INJECTION, "Mallory"),
                    ("T-1003", "Printer on 3rd floor shows offline", "Carol Chen"),
                ],
            )
            if steps:
                await steps(db, desk)
        await engine.dispose()

    asyncio.run(go())


def app_for(url: str, email: str, start: str = "auto") -> RflowApp:
    return RflowApp(Settings(database_url=url, user=email), start=start)


async def flow_walk(db, desk):
    flow = await import_flow_doc(db, actor=desk.owner, doc=SMALL_FLOW, source="test")
    await walk_start.start_flow_session(db, actor=desk.tech, ticket_id="T-1001", flow_id=flow.id)


def screen_is(name: str):
    async def run_before(pilot):
        await wait_for(pilot, lambda: pilot.app.screen.__class__.__name__ == name)
        await pilot.pause(0.3)

    return run_before


def walk_at(selector: str, *keys: str, then=None):
    async def run_before(pilot):
        app = pilot.app
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ResumeDialog" and app.screen.active)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.query(selector))
        if keys:
            await pilot.press(*keys)
        if then is not None:
            await then(pilot)
        await pilot.pause(0.3)

    return run_before


def test_picker(snap_compare, db_url):
    seed(db_url)
    assert snap_compare(app_for(db_url, "tech@contoso.test"), terminal_size=SIZE, run_before=screen_is("PickerScreen"))


def test_walk_question_with_custom_labels(snap_compare, db_url):
    seed(db_url, flow_walk)
    assert snap_compare(app_for(db_url, "tech@contoso.test"), terminal_size=SIZE, run_before=walk_at("#answer-yes"))


def test_walk_instruction(snap_compare, db_url):
    seed(db_url, flow_walk)

    async def until_instruction(pilot):
        await wait_for(pilot, lambda: pilot.app.screen.query("#acknowledge"))

    assert snap_compare(
        app_for(db_url, "tech@contoso.test"),
        terminal_size=SIZE,
        run_before=walk_at("#answer-yes", "c", *"work account", "enter", "1", then=until_instruction),
    )


def test_walk_notes_pane(snap_compare, db_url):
    seed(db_url, flow_walk)

    async def notes(pilot):
        await pilot.press("s", *"Called Bob 9:05, will retry after lunch")
        await wait_for(pilot, lambda: str(pilot.app.screen.query_one("#notes-status").render()) == "Saved")

    assert snap_compare(
        app_for(db_url, "tech@contoso.test"), terminal_size=SIZE, run_before=walk_at("#answer-yes", then=notes)
    )


def test_resolve_dialog(snap_compare, db_url):
    seed(db_url, flow_walk)

    async def invalid(pilot):
        await wait_for(pilot, lambda: pilot.app.screen.__class__.__name__ == "ResolveDialog")
        await pilot.press("ctrl+s")

    assert snap_compare(
        app_for(db_url, "tech@contoso.test"), terminal_size=SIZE, run_before=walk_at("#answer-yes", "r", then=invalid)
    )


def test_escalate_dialog(snap_compare, db_url):
    seed(db_url, flow_walk)

    async def opened(pilot):
        await wait_for(pilot, lambda: pilot.app.screen.__class__.__name__ == "EscalateDialog")

    assert snap_compare(
        app_for(db_url, "tech@contoso.test"), terminal_size=SIZE, run_before=walk_at("#answer-yes", "e", then=opened)
    )


def test_escalations_screen(snap_compare, db_url):
    seed(db_url, escalated_printer)

    assert snap_compare(app_for(db_url, "eng@contoso.test"), terminal_size=SIZE, run_before=escalation_shown)


async def escalated_printer(db, desk):
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1003")
    await walk_steps.update_notes(db, actor=desk.tech, session_id=walk.id, notes=["Printer shows no IP address"])
    await walk_endings.escalate(
        db, actor=desk.tech, session_id=walk.id, reason="Needs onsite visit", reason_category="hardware"
    )


async def escalation_shown(pilot):
    """The escalation selected, with its ticket loaded into the pane."""

    def body(selector: str) -> str:
        return str(pilot.app.screen.query_one(selector).render())

    await wait_for(pilot, lambda: "Needs onsite visit" in body("#escalation-body"))
    await wait_for(pilot, lambda: "Printer on 3rd floor" in body("#ticket-subject"))
    await wait_for(pilot, lambda: pilot.app.screen.sub_title.endswith(" · live"))
    await wait_for(pilot, lambda: "✉ 1" in body("#escalation-status"))  # the inbox count, read in a worker
    await pilot.pause(0.3)


def test_no_knowledge_screen(snap_compare, db_url):
    seed(db_url)

    async def opened(pilot):
        await wait_for(
            pilot,
            lambda: (
                pilot.app.screen.__class__.__name__ == "PickerScreen"
                and pilot.app.screen.query_one("DataTable").row_count == 6
            ),
        )
        pilot.app.screen.query_one("DataTable").focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: pilot.app.screen.__class__.__name__ == "NoKnowledgeScreen")
        await pilot.pause(0.3)

    assert snap_compare(app_for(db_url, "tech@contoso.test"), terminal_size=SIZE, run_before=opened)


NARROW = (80, 24)


def test_escalations_at_80x24(snap_compare, db_url):
    """The engineer's pane at the smallest terminal: the ticket, the reason, the footer's keys."""
    seed(db_url, escalated_printer)
    assert snap_compare(app_for(db_url, "eng@contoso.test"), terminal_size=NARROW, run_before=escalation_shown)


def test_picker_at_80x24(snap_compare, db_url):
    """The footer fits: the picker's essential keys and F1 Keys, nothing cut off."""
    seed(db_url)
    assert snap_compare(
        app_for(db_url, "tech@contoso.test"), terminal_size=NARROW, run_before=screen_is("PickerScreen")
    )


def test_walk_at_80x24(snap_compare, db_url):
    seed(db_url, flow_walk)
    assert snap_compare(app_for(db_url, "tech@contoso.test"), terminal_size=NARROW, run_before=walk_at("#answer-yes"))


def test_key_sheet_on_the_walk(snap_compare, db_url):
    seed(db_url, flow_walk)

    async def sheet(pilot):
        await wait_for(pilot, lambda: pilot.app.screen.__class__.__name__ == "KeySheet")

    assert snap_compare(
        app_for(db_url, "tech@contoso.test"), terminal_size=SIZE, run_before=walk_at("#answer-yes", "f1", then=sheet)
    )


class HalfWritten:
    """A streaming generator that writes two whole sentences and half a third, then holds."""

    name = "half-written"

    async def generate(self, context):
        return await self.stream(context, lambda partial: None)

    async def stream(self, context, on_partial):
        text = "Open Outlook in safe mode (outlook.exe /safe). Does it open now? If it does, an add-in is"
        for end in range(10, len(text) + 1, 10):
            on_partial({"id": "q-safe", "type": "question", "text": text[:end]})
        await asyncio.Event().wait()


def test_walk_while_the_ai_streams_the_next_step(snap_compare, db_url, monkeypatch):
    """The next step as it is written on a desk that runs the rules alone (no judge that could
    still refuse it): whole sentences the rules passed, the seconds waited, no answer buttons."""
    from rflow_tui.tui.widgets import node_card
    from tests.fakes import ScriptedGenerator
    from tests.tui_support import ACCOUNT_Q

    monkeypatch.setattr(node_card, "clock", lambda: 500.0)

    async def ai_walk(db, desk):
        walk = await walk_start.start_ai_build_session(
            db, actor=desk.tech, ticket_id="T-1001", category="email", problem_text="Outlook will not open"
        )
        await ai_steps.advance_ai_build(
            db, actor=desk.tech, session_id=walk.id, generator=ScriptedGenerator(ACCOUNT_Q), judge=None
        )

    seed(db_url, ai_walk)
    llm = LLMSettings(prefetch=False, judge="off")
    app = RflowApp(Settings(database_url=db_url, user="tech@contoso.test", llm=llm))

    async def streaming(pilot):
        await wait_for(pilot, lambda: pilot.app.screen.__class__.__name__ == "ResumeDialog" and pilot.app.screen.active)
        pilot.app.ctx._generator = HalfWritten()
        await pilot.press("enter")
        await wait_for(pilot, lambda: pilot.app.screen.query("#answer-yes"))
        await pilot.press("1")
        await wait_for(pilot, lambda: "Does it open now?" in str(pilot.app.screen.query_one("#node-text").render()))
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=SIZE, run_before=streaming)
