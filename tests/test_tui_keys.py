"""Keyboard-first help: the command palette's rflow commands and the key sheet."""

from __future__ import annotations

import pytest
from textual.command import CommandList

from rflow_tui.tui import format as tui_format
from tests.conftest import make_desk
from tests.tui_support import FROZEN_NOW, INJECTION, make_app, seed_tickets, wait_for


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    monkeypatch.setattr(tui_format, "now", lambda: FROZEN_NOW)


def palette_prompts(app) -> list[str]:
    options = app.screen.query_one(CommandList)
    return [str(options.get_option_at_index(i).prompt).split("\n")[0] for i in range(options.option_count)]


async def palette_search(pilot, app, text: str, expect: str) -> list[str]:
    await pilot.press("ctrl+p")
    await wait_for(pilot, lambda: app.screen.__class__.__name__ == "CommandPalette")
    await pilot.press(*text)
    await wait_for(pilot, lambda: any(expect in p for p in palette_prompts(app)))
    await pilot.pause(0.2)  # let every provider finish
    return palette_prompts(app)


async def test_palette_finds_open_escalations_and_opens_them(store, desk):
    app = make_app(store, desk.engineer)
    async with app.run_test(size=(120, 34)) as pilot:
        await wait_for(pilot, lambda: app.ready)
        await pilot.press("f4")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ProposalsScreen")
        prompts = await palette_search(pilot, app, "escal", "Open escalations")
        assert prompts[0] == "Open escalations"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "EscalationsScreen")


async def test_palette_finds_tickets_of_this_account_only_as_plain_text(store, db, desk):
    other = await make_desk(db, name="Fabrikam", domain="fabrikam.test")
    await seed_tickets(db, desk.tech.account_id, [("T-700", "Zebra scanner beeps", "Zoe"), ("T-701", INJECTION, "Mallory")])
    await seed_tickets(db, other.tech.account_id, [("T-900", "Zebra label printer", "Zed")])
    app = make_app(store, desk.tech)
    async with app.run_test(size=(120, 34)) as pilot:
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "PickerScreen")
        prompts = await palette_search(pilot, app, "zebra", "T-700")
        assert not any("T-900" in p for p in prompts), "a ticket of another account was offered"
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "PickerScreen")
        prompts = await palette_search(pilot, app, "T-701", "T-701")
        assert any("[bold red]x[/] [@click=app.quit]q[/]" in p for p in prompts), prompts  # shown, not parsed
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "PickerScreen")
        prompts = await palette_search(pilot, app, "zebra", "T-700")
        await pilot.press(*["down"] * (prompts.index(next(p for p in prompts if "T-700" in p)) + 1), "enter")
        # no flow and no AI on this desk: the start dialog hands over to the no-knowledge screen
        await wait_for(pilot, lambda: app.screen.__class__.__name__ in ("StartDialog", "NoKnowledgeScreen"))
        assert app.screen.ticket.ticket_id == "T-700"


async def test_palette_offers_a_tech_only_what_a_tech_may_do(store, desk):
    app = make_app(store, desk.tech)
    async with app.run_test(size=(120, 34)) as pilot:
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "PickerScreen")
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "CommandPalette")
        await wait_for(pilot, lambda: "Resume a walk" in palette_prompts(app))
        prompts = palette_prompts(app)
        assert {"Show keys", "Switch theme", "Tickets", "Start a walk", "Resume a walk"} <= set(prompts)
        assert "Open escalations" not in prompts and "Open proposals" not in prompts
        await pilot.press(*"resume", "enter")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ResumeDialog")


async def test_key_sheet_lists_this_screens_bindings_and_the_global_ones(store, db, desk):
    await seed_tickets(db, desk.tech.account_id, [("T-800", "Mouse", "Di")])
    app = make_app(store, desk.tech)
    async with app.run_test(size=(120, 34)) as pilot:
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "PickerScreen")
        await wait_for(pilot, lambda: app.screen.query_one("DataTable").row_count > 0)
        app.screen.query_one("DataTable").focus()
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "KeySheet")
        screen_keys = app.screen.for_screen
        for binding in screen_keys.BINDINGS:
            assert binding.description in _rendered(app, "#screen-keys")
        for binding in app.BINDINGS:
            assert binding.description in _rendered(app, "#global-keys")
        assert "F1 / ?" in _rendered(app, "#global-keys")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "PickerScreen")
        # In the filter "?" is a character; F1 still opens the sheet
        await pilot.press("ctrl+f", "question_mark")
        assert app.screen.query_one("#filter").value == "?"
        await pilot.press("f1")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "KeySheet")
        await pilot.press("f1")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "PickerScreen")


def _rendered(app, selector: str) -> str:
    """The sheet's table as the user sees it (rendered to plain text)."""
    from rich.console import Console

    console = Console(width=100, record=True, color_system=None)
    console.print(app.screen.query_one(selector).content)
    return console.export_text()


async def test_first_enter_on_the_picker_starts_a_walk_on_the_highlighted_ticket(store, db, desk):
    await seed_tickets(db, desk.tech.account_id, [("T-810", "Mouse", "Di"), ("T-811", "Keyboard", "Ed")])
    app = make_app(store, desk.tech)
    async with app.run_test(size=(120, 34)) as pilot:
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "PickerScreen")
        await wait_for(pilot, lambda: app.screen.query_one("DataTable").row_count > 0)
        table = app.screen.query_one("DataTable")
        assert app.screen.query_one("#filter").has_focus  # where the tech lands: typing filters
        highlighted = app.screen.loaded[table.cursor_row].ticket_id
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ in ("StartDialog", "NoKnowledgeScreen"))
        assert app.screen.ticket.ticket_id == highlighted


async def _sheet_on_walk(pilot, app) -> str:
    await wait_for(pilot, lambda: app.screen.__class__.__name__ == "WalkScreen" and app.screen.query("#answers Button"))
    await pilot.press("f1")
    await wait_for(pilot, lambda: app.screen.__class__.__name__ == "KeySheet")
    return _rendered(app, "#screen-keys")


async def test_step_back_is_offered_on_a_flow_walk_only(store, db, desk):
    from rflow_tui.services import sessions as svc
    from rflow_tui.services.flows import import_flow_doc
    from tests.fakes import ScriptedGenerator
    from tests.tui_support import SMALL_FLOW, open_resumed_walk

    await seed_tickets(db, desk.tech.account_id, [("T-820", "Outlook will not open", "Bob"), ("T-821", "Outlook", "Bob")])
    flow = await import_flow_doc(db, actor=desk.owner, doc=SMALL_FLOW, source="test")
    walk = await svc.start_flow_session(db, actor=desk.tech, ticket_id="T-820", flow_id=flow.id)
    app = make_app(store, desk.tech)
    async with app.run_test(size=(120, 34)) as pilot:
        await open_resumed_walk(pilot, app)
        assert "Step back" in await _sheet_on_walk(pilot, app)
    await svc.escalate(db, actor=desk.tech, session_id=walk.id, reason="test", reason_category="other")

    await svc.start_ai_build_session(db, actor=desk.tech, ticket_id="T-821", category="email", problem_text="Outlook")
    generator = ScriptedGenerator({"id": "q1", "type": "question", "text": "Microsoft account?"})
    app = make_app(store, desk.tech, generator=generator)
    async with app.run_test(size=(120, 34)) as pilot:
        await open_resumed_walk(pilot, app)
        assert "Step back" not in await _sheet_on_walk(pilot, app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "WalkScreen")
        assert not app.screen.check_action("step_back", ())
