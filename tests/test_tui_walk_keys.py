"""The walk screen, keyboard first: every key does what the screen says in every state,
Enter never answers a question, no way out loses the session notes, and the ticket
is in view."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import select

from rflow_tui.ai.base import GenerationError
from rflow_tui.models import L1WalkSession, Ticket
from rflow_tui.services import sessions as svc
from rflow_tui.services.flows import import_flow_doc
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
    walk = await svc.start_ai_build_session(
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
    walk = await svc.start_ai_build_session(
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
        assert (await stored_walk(db, walk.id)).walked_path == []
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
        assert len((await stored_walk(db, walk.id)).walked_path) == 1
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
    assert [(s["id"], s["answer"]) for s in stored.walked_path] == [("q1", "no"), ("i1", None)]
    assert stored.status == "active" and generator.calls == 3


async def test_after_a_step_note_the_keys_answer_again(store, db, desk):
    await seed_tickets(db, desk.tech.account_id, [("T-120", "Outlook will not open", "Bob")])
    walk = await svc.start_ai_build_session(
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
    [step] = (await stored_walk(db, walk.id)).walked_path
    assert (step["answer"], step["l1_note"]) == ("yes", "work laptop")


# --- Enter acknowledges instructions only ----------------------------------------------


async def test_enter_after_an_instruction_does_not_answer_the_next_question(store, db, desk):
    await seed_tickets(db, desk.tech.account_id, [("T-200", "Outlook will not open", "Bob")])
    flow = await import_flow_doc(db, actor=desk.owner, doc=SMALL_FLOW, source="test")
    walk = await svc.start_flow_session(db, actor=desk.tech, ticket_id="T-200", flow_id=flow.id)
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
        assert [s["node_id"] for s in (await stored_walk(db, walk.id)).walked_path] == ["q-account", "i-safe"]
        await pilot.click("#answer-yes")  # a click still answers
        await wait_for(pilot, lambda: app.screen.query("#do-resolve"))
    path = (await stored_walk(db, walk.id)).walked_path
    assert [(s["node_id"], s["answer"]) for s in path] == [("q-account", "yes"), ("i-safe", None), ("q-works", "yes")]


# --- no way out loses the notes ----------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "lands_on"), [("f2", "PickerScreen"), ("f3", "EscalationsScreen"), ("f4", "ProposalsScreen")]
)
async def test_f_keys_during_a_walk_save_the_notes_typed_a_moment_ago(store, db, desk, key, lands_on):
    await seed_tickets(db, desk.coverage.account_id, [("T-300", "Keyboard sticky", "Al")])
    walk = await svc.start_adhoc_session(db, actor=desk.coverage, ticket_id="T-300")
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
    walk = await svc.start_adhoc_session(db, actor=desk.tech, ticket_id="T-310")
    await svc.update_notes(db, actor=desk.tech, session_id=walk.id, notes=["kept"])
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
    walk = await svc.start_adhoc_session(db, actor=desk.tech, ticket_id="T-320")
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
    await svc.start_adhoc_session(db, actor=desk.tech, ticket_id="T-400")
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
