"""The walk screen, keyboard first: every key does what the screen says in every state,
Enter never answers a question, no way out loses the session notes, and the ticket
is in view."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import select

from rflow_tui.ai.errors import GenerationError
from rflow_tui.config import LLMSettings
from rflow_tui.models import L1WalkSession, Ticket
from rflow_tui.services.library import import_flow_doc
from rflow_tui.services.walks import start as walk_start
from rflow_tui.services.walks import steps as walk_steps
from rflow_tui.tui import format as tui_format
from rflow_tui.tui.widgets import AnswerBar
from tests.tui_support import (
    ACCOUNT_Q,
    FIXED,
    FROZEN_NOW,
    INJECTION,
    SAFE_MODE,
    SMALL_FLOW,
    make_app,
    open_resumed_walk,
    seed_tickets,
    wait_for,
    with_slow_autosave,
)
from tests.walk_paths import path_of


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    monkeypatch.setattr(tui_format, "now", lambda: FROZEN_NOW)


class Steps:
    """A generator that serves nodes, raises errors, or waits for a gate, in the order given."""

    name = "steps"

    def __init__(self, *steps) -> None:
        self.steps = list(steps)
        self.calls = 0

    async def generate(self, context) -> dict:
        self.calls += 1
        step = self.steps.pop(0)
        if isinstance(step, asyncio.Event):
            await step.wait()
            step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


async def stored_walk(db, session_id: int) -> L1WalkSession:
    await db.rollback()  # end any read snapshot, so what the app wrote is visible
    return (await db.exec(select(L1WalkSession).where(L1WalkSession.id == session_id))).one()


def screen_name(app) -> str:
    return app.screen.__class__.__name__


def nothing_typed(app) -> bool:
    walk = app.screen
    return walk.query_one("#step-note").value == "" and walk.query_one("#session-notes").text == ""


def keys_go_to_the_answers(app) -> bool:
    return isinstance(app.screen.focused, AnswerBar)


async def back_from(pilot, app, dialog: str) -> None:
    await wait_for(pilot, lambda: screen_name(app) == dialog)
    await pilot.press("escape")
    await wait_for(pilot, lambda: screen_name(app) == "WalkScreen")
    await pilot.pause(0.05)
    assert keys_go_to_the_answers(app), f"back from {dialog}, focus is on {app.screen.focused}"


# --- every state, every key --------------------------------------------------------------


async def test_an_ai_walk_whose_first_step_fails_still_answers_t_e_and_r(store, db, desk):
    await seed_tickets(db, desk.tech.account_id, [("T-100", "Outlook will not open", "Bob")])
    walk = await walk_start.start_ai_build_session(
        db, actor=desk.tech, ticket_id="T-100", category="email", problem_text="Outlook"
    )
    generator = Steps(GenerationError("The AI service is overloaded."), ACCOUNT_Q)
    app = make_app(store, desk.tech, generator=generator)
    async with app.run_test(size=(130, 40)) as pilot:
        await open_resumed_walk(pilot, app)
        await wait_for(pilot, lambda: app.screen.query("#do-retry"))
        assert keys_go_to_the_answers(app)
        await pilot.press("e")
        await back_from(pilot, app, "EscalateDialog")
        await pilot.press("r")
        await back_from(pilot, app, "ResolveDialog")
        assert nothing_typed(app)
        await pilot.press("t")
        await wait_for(pilot, lambda: app.screen.query("#answer-yes"))
        assert keys_go_to_the_answers(app)
    assert (await stored_walk(db, walk.id)).pending_node["id"] == "q1"


async def test_each_state_of_an_ai_walk_takes_its_keys_and_ignores_the_rest(store, db, desk):
    await seed_tickets(db, desk.tech.account_id, [("T-110", "Outlook will not open", "Bob")])
    walk = await walk_start.start_ai_build_session(
        db, actor=desk.tech, ticket_id="T-110", category="email", problem_text="Outlook"
    )
    first_step, second_step = asyncio.Event(), asyncio.Event()
    generator = Steps(first_step, ACCOUNT_Q, second_step, SAFE_MODE, FIXED)
    app = make_app(store, desk.tech, generator=generator)
    async with app.run_test(size=(130, 40)) as pilot:
        await open_resumed_walk(pilot, app)

        # loading: the answer keys are ignored, none is typed into a note; e and r still work
        await wait_for(pilot, lambda: app.screen.busy)
        assert keys_go_to_the_answers(app)
        await pilot.press("1", "enter", "t", "x")
        await pilot.pause(0.1)
        assert screen_name(app) == "WalkScreen" and nothing_typed(app)
        await pilot.press("e")
        await back_from(pilot, app, "EscalateDialog")
        await pilot.press("r")
        await back_from(pilot, app, "ResolveDialog")
        assert app.screen.busy and nothing_typed(app)  # the AI is still writing
        first_step.set()

        # a question: Enter does nothing, 2 answers
        await wait_for(pilot, lambda: app.screen.query("#answer-no") and not app.screen.busy)
        assert keys_go_to_the_answers(app)
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert (await path_of(db, await stored_walk(db, walk.id))) == []
        await pilot.press("2")

        # loading again after the answer
        await wait_for(pilot, lambda: app.screen.busy)
        await pilot.press("y")
        await pilot.pause(0.1)
        assert screen_name(app) == "WalkScreen" and nothing_typed(app)
        await pilot.press("r")
        await back_from(pilot, app, "ResolveDialog")
        second_step.set()

        # an instruction: 1 and y do nothing, Enter acknowledges
        await wait_for(pilot, lambda: app.screen.query("#acknowledge") and not app.screen.busy)
        assert keys_go_to_the_answers(app)
        await pilot.press("1", "y")
        await pilot.pause(0.1)
        assert len(await path_of(db, await stored_walk(db, walk.id))) == 1
        await pilot.press("enter")

        # an end node: e and r open their dialogs, and coming back leaves the keys working
        await wait_for(pilot, lambda: app.screen.query("#do-resolve") and not app.screen.busy)
        assert keys_go_to_the_answers(app)
        await pilot.press("enter", "1")
        await pilot.pause(0.1)
        await pilot.press("e")
        await back_from(pilot, app, "EscalateDialog")
        await pilot.press("r")
        await back_from(pilot, app, "ResolveDialog")
        assert nothing_typed(app)
    stored = await stored_walk(db, walk.id)
    assert [(s["id"], s["answer"]) for s in (await path_of(db, stored))] == [("q1", "no"), ("i1", None)]
    assert stored.status == "active" and generator.calls == 3


async def test_after_a_step_note_the_keys_answer_again(store, db, desk):
    await seed_tickets(db, desk.tech.account_id, [("T-120", "Outlook will not open", "Bob")])
    walk = await walk_start.start_ai_build_session(
        db, actor=desk.tech, ticket_id="T-120", category="email", problem_text="Outlook"
    )
    app = make_app(store, desk.tech, generator=Steps(ACCOUNT_Q, SAFE_MODE))
    async with app.run_test(size=(130, 40)) as pilot:
        await open_resumed_walk(pilot, app)
        await wait_for(pilot, lambda: app.screen.query("#answer-yes"))
        await pilot.press("c", *"work laptop", "enter")
        assert keys_go_to_the_answers(app)
        await pilot.press("1")
        await wait_for(pilot, lambda: app.screen.query("#acknowledge"))
    [step] = await path_of(db, await stored_walk(db, walk.id))
    assert (step["answer"], step["l1_note"]) == ("yes", "work laptop")


# --- Enter acknowledges instructions only ----------------------------------------------


async def test_enter_after_an_instruction_does_not_answer_the_next_question(store, db, desk):
    await seed_tickets(db, desk.tech.account_id, [("T-200", "Outlook will not open", "Bob")])
    flow = await import_flow_doc(db, actor=desk.owner, doc=SMALL_FLOW, source="test")
    walk = await walk_start.start_flow_session(db, actor=desk.tech, ticket_id="T-200", flow_id=flow.id)
    app = make_app(store, desk.tech)
    async with app.run_test(size=(130, 40)) as pilot:
        await open_resumed_walk(pilot, app)
        await wait_for(pilot, lambda: app.screen.query("#answer-yes"))
        await pilot.press("1")
        await wait_for(pilot, lambda: app.screen.query("#acknowledge"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: "safe mode?" in str(app.screen.query_one("#node-text").render()))
        await pilot.press("enter", "enter")  # the tech's second Enter, out of habit
        await pilot.pause(0.2)
        assert [s["node_id"] for s in (await path_of(db, await stored_walk(db, walk.id)))] == ["q-account", "i-safe"]
        await pilot.click("#answer-yes")  # a click still answers
        await wait_for(pilot, lambda: app.screen.query("#do-resolve"))
    path = await path_of(db, await stored_walk(db, walk.id))
    assert [(s["node_id"], s["answer"]) for s in path] == [("q-account", "yes"), ("i-safe", None), ("q-works", "yes")]


# --- no way out loses the notes ----------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "lands_on"), [("f2", "PickerScreen"), ("f3", "EscalationsScreen"), ("f4", "ProposalsScreen")]
)
async def test_f_keys_during_a_walk_save_the_notes_typed_a_moment_ago(store, db, desk, key, lands_on):
    await seed_tickets(db, desk.coverage.account_id, [("T-300", "Keyboard sticky", "Al")])
    walk = await walk_start.start_adhoc_session(db, actor=desk.coverage, ticket_id="T-300")
    app = with_slow_autosave(make_app(store, desk.coverage))
    async with app.run_test(size=(130, 40)) as pilot:
        await open_resumed_walk(pilot, app)
        await wait_for(pilot, lambda: app.screen.focused is app.screen.query_one("#session-notes"))
        await pilot.press(*"spilled coffee")
        assert str(app.screen.query_one("#notes-status").render()) == "Editing…"
        await pilot.press(key)
        await wait_for(pilot, lambda: lands_on in [screen.__class__.__name__ for screen in app.screen_stack])
    assert (await stored_walk(db, walk.id)).walk_notes == ["spilled coffee"]


async def test_f2_with_notes_too_large_to_save_keeps_the_walk_and_its_text(store, db, desk):
    await seed_tickets(db, desk.tech.account_id, [("T-310", "Huge logs", "Bo")])
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-310")
    await walk_steps.update_notes(db, actor=desk.tech, session_id=walk.id, notes=["kept"])
    app = with_slow_autosave(make_app(store, desk.tech))
    huge = "log line\n" * 40_000
    async with app.run_test(size=(130, 40)) as pilot:
        await open_resumed_walk(pilot, app)
        app.screen.query_one("#session-notes").text = huge
        await pilot.press("f2")
        await wait_for(pilot, lambda: "Not saved" in str(app.screen.query_one("#notes-status").render()))
        await pilot.pause(0.2)
        assert screen_name(app) == "WalkScreen"
        assert app.screen.query_one("#session-notes").text == huge
        assert any("not saved" in str(n.message) for n in app._notifications)
    assert (await stored_walk(db, walk.id)).walk_notes == ["kept"]


async def test_notes_are_saved_when_a_dialog_covers_them(store, db, desk):
    await seed_tickets(db, desk.tech.account_id, [("T-320", "Mouse", "Di")])
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-320")
    app = with_slow_autosave(make_app(store, desk.tech))
    async with app.run_test(size=(130, 40)) as pilot:
        await open_resumed_walk(pilot, app)
        await wait_for(pilot, lambda: app.screen.focused is app.screen.query_one("#session-notes"))
        await pilot.press(*"left button dead", "escape", "r")
        await wait_for(pilot, lambda: screen_name(app) == "ResolveDialog")
        await pilot.pause(0.2)
        assert (await stored_walk(db, walk.id)).walk_notes == ["left button dead"]


# --- the ticket in view ----------------------------------------------------------------


async def test_the_walk_shows_the_ticket_and_its_description_folds_away(store, db, desk):
    db.add(
        Ticket(
            account_id=desk.tech.account_id,
            ticket_id="T-400",
            subject=INJECTION,
            requester="Bob Baker",
            category="email",
            body="Outlook crashes at the splash screen since Monday.",
            created_at=FROZEN_NOW.replace(hour=6),
            updated_at=FROZEN_NOW,
        )
    )
    await db.commit()
    await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-400")
    app = make_app(store, desk.tech)
    async with app.run_test(size=(130, 40)) as pilot:
        await open_resumed_walk(pilot, app)
        header = app.screen.query_one("TicketHeader")
        await wait_for(pilot, lambda: header.ticket is not None)
        subject = app.screen.query_one("#ticket-subject").render()
        assert str(subject) == "▾ T-400 · [bold red]x[/] [@click=app.quit]q[/] red"  # literal, escapes gone
        assert (
            str(app.screen.query_one("#ticket-meta").render()) == "Bob Baker · email · 3h old · Ad-hoc walk · session 1"
        )
        description = app.screen.query_one("#ticket-description")
        assert "splash screen since Monday" in str(description.render()) and description.display
        await pilot.press("escape", "i")  # from the notes to the keys, then fold the ticket
        assert not description.display
        assert str(app.screen.query_one("#ticket-subject").render()).startswith("▸ T-400")
        await pilot.click("#ticket-subject")
        assert description.display
        assert app.is_running


# --- what the author wrote for the tech --------------------------------------------------


async def test_h_unfolds_the_authors_help_under_the_step_and_folds_it_again(store, db, desk):
    doc = {**SMALL_FLOW, "nodes": [dict(node) for node in SMALL_FLOW["nodes"]]}
    doc["nodes"][1]["help"] = "Hold Ctrl while clicking the Outlook icon.\n[bold red]x[/] [@click=app.quit]q[/]"
    await seed_tickets(db, desk.tech.account_id, [("T-500", "Outlook will not open", "Bob")])
    flow = await import_flow_doc(db, actor=desk.owner, doc=doc, source="test")
    await walk_start.start_flow_session(db, actor=desk.tech, ticket_id="T-500", flow_id=flow.id)
    app = make_app(store, desk.tech)
    async with app.run_test(size=(130, 40)) as pilot:
        await open_resumed_walk(pilot, app)
        await wait_for(pilot, lambda: app.screen.query("#answer-yes"))
        keys_line = app.screen.query_one("#node-help")
        assert "h the author's help" not in str(keys_line.render())  # the question has none
        await pilot.press("h")  # says so instead of doing nothing
        await wait_for(pilot, lambda: any("no help from its author" in str(n.message) for n in app._notifications))
        await pilot.press("1")
        await wait_for(pilot, lambda: app.screen.query("#acknowledge"))
        more = app.screen.query_one("#node-more")
        assert "h the author's help" in str(keys_line.render()) and not more.display
        await pilot.press("h")
        assert more.display
        shown = str(more.render())
        assert "Hold Ctrl while clicking" in shown and "[@click=app.quit]q[/]" in shown  # literal, not markup
        await pilot.press("h")
        assert not more.display


async def test_the_start_dialog_shows_the_highlighted_flows_description(store, db, desk):
    doc = {**SMALL_FLOW, "description": "For Outlook 2016 and later on Windows; not for OWA."}
    await seed_tickets(db, desk.tech.account_id, [("T-501", "Outlook will not open", "Bob")])
    await import_flow_doc(db, actor=desk.owner, doc=doc, source="test")
    app = make_app(store, desk.tech)
    async with app.run_test(size=(130, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.query("DataTable") and app.screen.query_one("DataTable").row_count)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.query("#flow-description"))
        about = app.screen.query_one("#flow-description")
        await wait_for(pilot, lambda: about.display)
        assert "For Outlook 2016 and later" in str(about.render())
        await pilot.press("down")  # the next choice is no flow: nothing to describe
        await wait_for(pilot, lambda: not about.display)


async def test_v_draws_the_flow_with_the_path_walked_and_the_node_the_walk_is_on(store, db, desk):
    doc = {**SMALL_FLOW, "nodes": [dict(node) for node in SMALL_FLOW["nodes"]]}
    doc["nodes"][2]["text"] = "[@click=app.quit]Does[/] Outlook open in safe mode?"  # literal in the map too
    await seed_tickets(db, desk.tech.account_id, [("T-502", "Outlook will not open", "Bob")])
    flow = await import_flow_doc(db, actor=desk.owner, doc=doc, source="test")
    await walk_start.start_flow_session(db, actor=desk.tech, ticket_id="T-502", flow_id=flow.id)
    app = make_app(store, desk.tech)
    async with app.run_test(size=(130, 40)) as pilot:
        await open_resumed_walk(pilot, app)
        await wait_for(pilot, lambda: app.screen.query("#answer-yes"))
        await pilot.press("1")  # Microsoft account: on to the safe-mode instruction
        await wait_for(pilot, lambda: app.screen.query("#acknowledge"))
        await pilot.press("v")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "FlowMapScreen")
        tree = app.screen.query_one("FlowTree")
        await wait_for(pilot, lambda: tree.root.children)
        labels = {}
        todo = list(tree.root.children)
        while todo:
            item = todo.pop()
            labels.setdefault(item.data, []).append(str(item.label))
            todo += item.children
        assert set(labels) == {"q-account", "i-safe", "q-works", "done", "esc"}
        assert "(walked)" in labels["q-account"][0] and "you are here" in labels["i-safe"][0]
        assert labels["i-safe"][0].startswith("Microsoft account → ")  # the branch under its answer
        assert sorted(label.endswith("back to esc") for label in labels["esc"]) == [False, True]  # drawn once
        assert "[@click=app.quit]Does[/]" in labels["q-works"][0]
        await wait_for(pilot, lambda: tree.cursor_node is not None and tree.cursor_node.data == "i-safe")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "WalkScreen")
        assert app.screen.query("#acknowledge")  # the walk goes on where it was


async def test_v_on_an_ai_walk_says_there_is_no_map(store, db, desk):
    walk = await walk_start.start_ai_build_session(
        db, actor=desk.tech, ticket_id="T-1", category="email", problem_text="Outlook will not open"
    )
    assert walk.id
    app = make_app(store, desk.tech, generator=Steps(ACCOUNT_Q))
    async with app.run_test(size=(130, 40)) as pilot:
        await open_resumed_walk(pilot, app)
        await wait_for(pilot, lambda: app.screen.query("#answer-yes"))
        await pilot.press("v")
        await wait_for(
            pilot, lambda: any("Only a flow or a proposal has a map" in str(n.message) for n in app._notifications)
        )
        assert app.screen.__class__.__name__ == "WalkScreen"


# --- what the footer says, each key does --------------------------------------------------

DIALOGS = {"resolve": "ResolveDialog", "escalate": "EscalateDialog"}


def footer(app) -> dict[str, tuple[str, bool]]:
    """The walk's footer as drawn: action -> (key, usable now; a dimmed key is not)."""
    from textual.widgets._footer import FooterKey

    return {key.action: (key.key, not key.has_class("-disabled")) for key in app.screen.query(FooterKey)}


async def footer_keys_do_what_they_say(pilot, app, *, usable: set[str]) -> None:
    """Press every key the footer shows (but Back and Quit, which end the screen: the caller
    presses Back, test_tui_quit covers Quit) and check it did what its label says."""
    walk = app.screen
    await wait_for(pilot, lambda: {action for action, (_, on) in footer(app).items() if on} == usable)
    shown = footer(app)
    assert set(shown) == {"resolve", "escalate", "focus_notes", "leave", "quit", "key_sheet", "command_palette"}
    for action, (key, on) in shown.items():
        if action in ("leave", "quit"):
            continue
        await pilot.press(key)
        if not on:  # dimmed: nothing happens, nothing is typed
            await pilot.pause(0.1)
            assert app.screen is walk and nothing_typed(app), f"{key} is dimmed but acted"
        elif action in DIALOGS:
            await back_from(pilot, app, DIALOGS[action])
        elif action == "focus_notes":
            await wait_for(pilot, lambda: walk.focused is walk.query_one("#session-notes"))
            await pilot.press("escape")
        elif action == "key_sheet":
            await wait_for(pilot, lambda: screen_name(app) == "KeySheet" and app.screen.for_screen is walk)
            await pilot.press(key)
        elif action == "command_palette":
            await wait_for(pilot, lambda: screen_name(app) == "CommandPalette")
            await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is walk)
        await pilot.pause(0.05)
        assert keys_go_to_the_answers(app), f"after {key}, focus is on {walk.focused}"
    assert nothing_typed(app)


async def back_and_resume(pilot, app) -> None:
    """Back (Esc) leaves for the tickets; the walk is picked up again where it was."""
    await pilot.press(footer(app)["leave"][0])
    await wait_for(pilot, lambda: screen_name(app) == "PickerScreen")
    await pilot.press("ctrl+r")
    await open_resumed_walk(pilot, app)


async def test_in_every_state_each_footer_key_does_what_the_footer_says(store, db, desk):
    await seed_tickets(db, desk.tech.account_id, [("T-130", "Outlook will not open", "Bob")])
    walk = await walk_start.start_ai_build_session(
        db, actor=desk.tech, ticket_id="T-130", category="email", problem_text="Outlook"
    )
    first_step = asyncio.Event()
    generator = Steps(first_step, ACCOUNT_Q, GenerationError("The AI service is overloaded."), FIXED)
    everything = {"resolve", "escalate", "focus_notes", "leave", "key_sheet", "command_palette", "quit"}
    # the first step is held for the whole sweep of its keys, which on a loaded machine lasts
    # longer than the default 20 s step deadline: the step must still be writing at the end
    llm = LLMSettings(prefetch=False, step_deadline_seconds=600.0)
    app = make_app(store, desk.tech, generator=generator, llm=llm)
    async with app.run_test(size=(130, 40)) as pilot:
        await open_resumed_walk(pilot, app)

        # the AI writing: every key works, resolve and escalate too; Esc stops the AI, then goes back
        await wait_for(pilot, lambda: app.screen.busy)
        await footer_keys_do_what_they_say(pilot, app, usable=everything)
        await pilot.press("escape")  # stop: the walk keeps its place, t would ask again
        await wait_for(pilot, lambda: app.screen.query("#do-retry"))
        await pilot.press("escape")  # Back
        await wait_for(pilot, lambda: screen_name(app) == "PickerScreen")
        first_step.set()
        await wait_for(pilot, lambda: generator.calls == 1 and not app.ctx._in_flight)
        await pilot.press("ctrl+r")
        await open_resumed_walk(pilot, app)

        # a question, written again on resume (the stopped call stored nothing), then kept
        await wait_for(pilot, lambda: app.screen.query("#answer-no") and not app.screen.busy)
        await footer_keys_do_what_they_say(pilot, app, usable=everything)
        await back_and_resume(pilot, app)
        await wait_for(pilot, lambda: app.screen.query("#answer-no") and not app.screen.busy)
        assert generator.calls == 2  # back and resumed: the question was not written again
        await pilot.press("2")

        # the next step fails
        await wait_for(pilot, lambda: app.screen.query("#do-retry") and not app.screen.busy)
        await footer_keys_do_what_they_say(pilot, app, usable=everything)
        await pilot.press("t")  # Retry, as the step itself says

        # an end node
        await wait_for(pilot, lambda: app.screen.query("#do-resolve") and not app.screen.busy)
        assert "Outlook opens" in str(app.screen.query_one("#node-text").render())
        await footer_keys_do_what_they_say(pilot, app, usable=everything)
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen_name(app) == "PickerScreen")
    stored = await stored_walk(db, walk.id)
    assert [(s["id"], s["answer"]) for s in (await path_of(db, stored))] == [("q1", "no")]
    assert stored.status == "active" and generator.calls == 4
