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
    await seed_tickets(
        db, desk.tech.account_id, [("T-700", "Zebra scanner beeps", "Zoe"), ("T-701", INJECTION, "Mallory")]
    )
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
        for binding in screen_keys.BINDINGS:  # those that apply now (the closed tickets' keys do not)
            if screen_keys.check_action(binding.action, ()) is not False:
                assert binding.description in _rendered(app, "#screen-keys")
        assert "Reopen" not in _rendered(app, "#screen-keys")
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
    from rflow_tui.services.library import import_flow_doc
    from rflow_tui.services.walks import endings as walk_endings
    from rflow_tui.services.walks import start as walk_start
    from tests.fakes import ScriptedGenerator
    from tests.tui_support import SMALL_FLOW, open_resumed_walk

    await seed_tickets(
        db, desk.tech.account_id, [("T-820", "Outlook will not open", "Bob"), ("T-821", "Outlook", "Bob")]
    )
    flow = await import_flow_doc(db, actor=desk.owner, doc=SMALL_FLOW, source="test")
    walk = await walk_start.start_flow_session(db, actor=desk.tech, ticket_id="T-820", flow_id=flow.id)
    app = make_app(store, desk.tech)
    async with app.run_test(size=(120, 34)) as pilot:
        await open_resumed_walk(pilot, app)
        assert "Step back" in await _sheet_on_walk(pilot, app)
    await walk_endings.escalate(db, actor=desk.tech, session_id=walk.id, reason="test", reason_category="other")

    await walk_start.start_ai_build_session(
        db, actor=desk.tech, ticket_id="T-821", category="email", problem_text="Outlook"
    )
    generator = ScriptedGenerator({"id": "q1", "type": "question", "text": "Microsoft account?"})
    app = make_app(store, desk.tech, generator=generator)
    async with app.run_test(size=(120, 34)) as pilot:
        await open_resumed_walk(pilot, app)
        assert "Step back" not in await _sheet_on_walk(pilot, app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "WalkScreen")
        assert not app.screen.check_action("step_back", ())


async def test_f3_shows_a_tech_their_own_finished_walks(store, db, desk):
    from rflow_tui.services.walks import endings as walk_endings
    from rflow_tui.services.walks import start as walk_start

    other = await make_desk(db, name="Fabrikam", domain="fabrikam.test")
    await seed_tickets(
        db,
        desk.tech.account_id,
        [("T-830", "Wi-Fi drops", "Al"), ("T-831", "Printer jam", "Bo"), ("T-832", "Mouse", "Cy")],
    )
    await seed_tickets(db, other.tech.account_id, [("T-930", "Elsewhere", "Zed")])
    resolved = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-830")
    await walk_endings.resolve(db, actor=desk.tech, session_id=resolved.id, helpful=True, resolution_notes="rebooted")
    await walk_endings.escalate_without_walk(
        db, actor=desk.tech, ticket_id="T-831", reason="jammed", reason_category="hardware"
    )
    by_someone_else = await walk_start.start_adhoc_session(db, actor=desk.coverage, ticket_id="T-832")
    await walk_endings.escalate(
        db, actor=desk.coverage, session_id=by_someone_else.id, reason="x", reason_category="other"
    )
    elsewhere = await walk_start.start_adhoc_session(db, actor=other.tech, ticket_id="T-930")
    await walk_endings.escalate(db, actor=other.tech, session_id=elsewhere.id, reason="x", reason_category="other")

    app = make_app(store, desk.tech)
    async with app.run_test(size=(120, 34)) as pilot:
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "PickerScreen")
        await pilot.press("f3")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "MyWalksScreen" and app.screen.walks)
        table = app.screen.query_one("DataTable")
        rows = [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]
        assert [(r[0], r[1], r[3], r[4], r[5]) for r in rows] == [
            ("T-831", "escalated", "No walk", "none", "Printer jam"),
            ("T-830", "resolved", "Ad-hoc", "0 steps", "Wi-Fi drops"),
        ]
        assert not any("Only owners" in n.message for n in app._notifications)


async def test_resume_list_names_the_subject_for_every_kind_with_plurals(store, db, desk):
    from rflow_tui.services.library import import_flow_doc
    from rflow_tui.services.walks import start as walk_start
    from rflow_tui.services.walks.flow_steps import answer_flow_node
    from tests.tui_support import SMALL_FLOW

    await seed_tickets(
        db,
        desk.tech.account_id,
        [
            ("T-840", "Outlook will not open", "Bob"),
            ("T-841", "Laptop fan noise", "Cy"),
            ("T-842", "Teams camera", "Di"),
        ],
    )
    flow = await import_flow_doc(db, actor=desk.owner, doc=SMALL_FLOW, source="test")
    walk = await walk_start.start_flow_session(db, actor=desk.tech, ticket_id="T-840", flow_id=flow.id)
    await answer_flow_node(db, actor=desk.tech, session_id=walk.id, answer="yes", node_id="q-account")
    await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-841")
    await walk_start.start_ai_build_session(
        db, actor=desk.tech, ticket_id="T-842", category="av", problem_text="camera"
    )
    # a PSA ticket is not on this desk: its problem's first line stands in for the subject
    await walk_start.start_ai_build_session(
        db, actor=desk.tech, ticket_id="CW-9", ticket_kind="psa", category="vpn", problem_text="VPN fails\nsince 9"
    )
    app = make_app(store, desk.tech)
    async with app.run_test(size=(120, 34)) as pilot:
        await wait_for(
            pilot,
            lambda: (
                app.screen.__class__.__name__ == "ResumeDialog" and app.screen.query_one("OptionList").option_count == 4
            ),
        )
        options = app.screen.query_one("OptionList")

        def labels() -> dict[str, str]:
            prompts = [str(options.get_option_at_index(i).prompt) for i in range(4)]
            return {prompt.split(" · ")[0]: prompt for prompt in prompts}

        await wait_for(pilot, lambda: labels()["CW-9"].endswith("VPN fails"))
        shown = labels()
        assert "· Flow · 1 step ·" in shown["T-840"] and shown["T-840"].endswith("Outlook will not open")
        assert "· Ad-hoc · 0 steps ·" in shown["T-841"] and shown["T-841"].endswith("Laptop fan noise")
        assert "· AI build · 0 steps ·" in shown["T-842"] and shown["T-842"].endswith("Teams camera")


async def test_focusing_the_notes_puts_the_cursor_at_the_end(store, db, desk):
    from rflow_tui.services.walks import start as walk_start
    from rflow_tui.services.walks import steps as walk_steps
    from tests.tui_support import resume_walk_with_focus_on_answers

    await seed_tickets(db, desk.tech.account_id, [("T-850", "Mouse", "Di")])
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-850")
    await walk_steps.update_notes(db, actor=desk.tech, session_id=walk.id, notes=["Called Di\nwill retry"])
    app = make_app(store, desk.tech)
    async with app.run_test(size=(120, 34)) as pilot:
        await resume_walk_with_focus_on_answers(pilot, app)
        await pilot.press("s", *" at 3")
        notes = app.screen.query_one("#session-notes")
        assert notes.text == "Called Di\nwill retry at 3"


async def test_the_resolve_choice_is_marked_in_text_not_only_colour(store, db, desk):
    from rflow_tui.services.walks import start as walk_start
    from tests.tui_support import resume_walk_with_focus_on_answers

    await seed_tickets(db, desk.tech.account_id, [("T-860", "Mouse", "Di")])
    await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-860")
    app = make_app(store, desk.tech)
    async with app.run_test(size=(120, 34)) as pilot:
        await resume_walk_with_focus_on_answers(pilot, app)
        await pilot.press("r")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ResolveDialog")
        labels = lambda: [str(app.screen.query_one(f"#helpful-{c}").label) for c in ("yes", "no")]  # noqa: E731
        assert not any(label.startswith("✓") for label in labels())
        await pilot.click("#helpful-no")
        await wait_for(pilot, lambda: labels()[1].startswith("✓"))
        assert not labels()[0].startswith("✓")


async def test_the_age_column_ticks(store, db, desk, monkeypatch):
    from datetime import timedelta

    from rflow_tui.tui.screens import picker

    monkeypatch.setattr(picker, "AGE_TICK_SECONDS", 0.1)
    await seed_tickets(db, desk.tech.account_id, [("T-870", "Mouse", "Di")])  # created 2h05m before FROZEN_NOW
    app = make_app(store, desk.tech)
    async with app.run_test(size=(120, 34)) as pilot:
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "PickerScreen" and app.screen.loaded)
        row = next(i for i, t in enumerate(app.screen.loaded) if t.ticket_id == "T-870")
        table = app.screen.query_one("DataTable")
        assert table.get_cell(str(row), "age") == "2h"
        monkeypatch.setattr(tui_format, "now", lambda: FROZEN_NOW + timedelta(hours=3))
        await wait_for(pilot, lambda: table.get_cell(str(row), "age") == "5h")


async def test_b_steps_back_on_a_flow_walk_and_does_nothing_on_an_ai_walk(store, db, desk):

    from rflow_tui.services.library import import_flow_doc
    from rflow_tui.services.walks import endings as walk_endings
    from rflow_tui.services.walks import start as walk_start
    from tests.fakes import ScriptedGenerator
    from tests.tui_support import SMALL_FLOW, resume_walk_with_focus_on_answers
    from tests.walk_paths import path_of

    async def path(walk_id: int) -> list:
        await db.rollback()
        return await path_of(db, walk_id)

    def node_text(app) -> str:
        return str(app.screen.query_one("#node-text").render())

    await seed_tickets(db, desk.tech.account_id, [("T-880", "Outlook", "Bob"), ("T-881", "Outlook", "Bob")])
    flow = await import_flow_doc(db, actor=desk.owner, doc=SMALL_FLOW, source="test")
    walk = await walk_start.start_flow_session(db, actor=desk.tech, ticket_id="T-880", flow_id=flow.id)
    app = make_app(store, desk.tech)
    async with app.run_test(size=(120, 34)) as pilot:
        await resume_walk_with_focus_on_answers(pilot, app)
        await pilot.press("1")
        await wait_for(pilot, lambda: app.screen.query("#acknowledge") and not app.screen.busy)
        await pilot.press("b")
        await wait_for(pilot, lambda: app.screen.query("#answer-yes") and "Microsoft account" in node_text(app))
    [step] = await path(walk.id)
    assert step["node_id"] == "q-account" and step.get("undone")  # undone, kept in the transcript
    await walk_endings.escalate(db, actor=desk.tech, session_id=walk.id, reason="test", reason_category="other")

    ai_walk = await walk_start.start_ai_build_session(
        db, actor=desk.tech, ticket_id="T-881", category="email", problem_text="Outlook"
    )
    generator = ScriptedGenerator(
        {"id": "q1", "type": "question", "text": "Microsoft account?"},
        {"id": "i1", "type": "instruction", "text": "Start Outlook in safe mode."},
    )
    app = make_app(store, desk.tech, generator=generator)
    async with app.run_test(size=(120, 34)) as pilot:
        await resume_walk_with_focus_on_answers(pilot, app)
        await pilot.press("1")
        await wait_for(pilot, lambda: app.screen.query("#acknowledge") and not app.screen.busy)
        await pilot.press("b")
        await pilot.pause(0.3)
        assert "safe mode" in node_text(app) and not app.screen.busy
        assert app.screen.query_one("#step-note").value == ""
    assert [s["id"] for s in await path(ai_walk.id)] == ["q1"]


async def test_my_walks_when_column_ticks(store, db, desk, monkeypatch):
    from datetime import UTC, timedelta

    from rflow_tui.services.walks import endings as walk_endings
    from rflow_tui.tui.screens.my_walks import MyWalksScreen

    monkeypatch.setattr(MyWalksScreen, "AGE_TICK", 0.1)
    await seed_tickets(db, desk.tech.account_id, [("T-890", "Mouse", "Di")])
    walk = await walk_endings.escalate_without_walk(
        db, actor=desk.tech, ticket_id="T-890", reason="x", reason_category="other"
    )
    app = make_app(store, desk.tech)
    async with app.run_test(size=(120, 34)) as pilot:
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "PickerScreen")
        await pilot.press("f3")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "MyWalksScreen" and app.screen.walks)
        table = app.screen.query_one("DataTable")
        resolved = walk.resolved_at if walk.resolved_at.tzinfo else walk.resolved_at.replace(tzinfo=UTC)
        monkeypatch.setattr(tui_format, "now", lambda: resolved + timedelta(hours=2))
        await wait_for(pilot, lambda: table.get_cell(str(walk.id), "when") == "2h ago")
        monkeypatch.setattr(tui_format, "now", lambda: resolved + timedelta(hours=5))
        await wait_for(pilot, lambda: table.get_cell(str(walk.id), "when") == "5h ago")
