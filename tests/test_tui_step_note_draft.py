"""A step note typed and not yet sent is kept: a quit, a covering screen or kill -9 loses
none of it, the walk restores it on resume, and sending it with the answer clears it."""

from __future__ import annotations

from sqlmodel import select

from rflow_tui.models import L1WalkSession
from rflow_tui.services import library
from rflow_tui.services.walks import flow_steps
from rflow_tui.services.walks import start as walk_start
from rflow_tui.services.walks import steps as walk_steps
from tests.tui_support import make_app, open_resumed_walk, seed_tickets, wait_for, with_slow_autosave


async def stored(db, session_id: int) -> L1WalkSession:
    await db.rollback()  # a fresh read: the app wrote through its own connection
    return (await db.exec(select(L1WalkSession).where(L1WalkSession.id == session_id))).one()


async def adhoc_walk(db, desk, ticket_id: str) -> int:
    await seed_tickets(db, desk.tech.account_id, [(ticket_id, "Laptop fan loud", "Al")])
    return (await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id=ticket_id)).id


async def test_ctrl_q_right_after_typing_keeps_the_step_note_and_resume_brings_it_back(store, db, desk):
    session_id = await adhoc_walk(db, desk, "T-810")
    app = with_slow_autosave(make_app(store, desk.tech))
    async with app.run_test(size=(130, 40)) as pilot:
        await open_resumed_walk(pilot, app)
        app.screen.query_one("#step-note").focus()
        await pilot.press(*"fan replaced under warranty")
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: app._exit)
    assert (await stored(db, session_id)).step_note_draft == "fan replaced under warranty"

    again = make_app(store, desk.tech)
    async with again.run_test(size=(130, 40)) as pilot:
        await open_resumed_walk(pilot, again)
        assert again.screen.query_one("#step-note").value == "fan replaced under warranty"


async def test_the_draft_is_in_the_store_a_moment_after_typing_stops_as_kill_9_would_find_it(store, db, desk):
    session_id = await adhoc_walk(db, desk, "T-811")
    app = make_app(store, desk.tech)  # the test autosave: 0.2 s after the last key
    async with app.run_test(size=(130, 40)) as pilot:
        await open_resumed_walk(pilot, app)
        app.screen.query_one("#step-note").focus()
        await pilot.press(*"BIOS 1.14")

        async def saved() -> bool:
            return (await stored(db, session_id)).step_note_draft == "BIOS 1.14"

        for _ in range(100):  # nothing but time passes: no quit, no screen change
            if await saved():
                break
            await pilot.pause(0.05)
        assert await saved()


async def test_a_covering_screen_saves_the_draft_at_once(store, db, desk):
    session_id = await adhoc_walk(db, desk, "T-812")
    app = with_slow_autosave(make_app(store, desk.tech))
    async with app.run_test(size=(130, 40)) as pilot:
        await open_resumed_walk(pilot, app)
        app.screen.query_one("#step-note").focus()
        await pilot.press(*"checked dock")
        await pilot.press("f1")  # the key sheet covers the walk
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "KeySheet")
        for _ in range(100):
            if (await stored(db, session_id)).step_note_draft == "checked dock":
                break
            await pilot.pause(0.05)
    assert (await stored(db, session_id)).step_note_draft == "checked dock"


async def test_a_note_sent_with_the_answer_clears_the_draft(store, db, desk):
    await seed_tickets(db, desk.tech.account_id, [("T-813", "Outlook will not open", "Al")])
    flow = (await library.install_starter_library(db, actor=desk.owner))[0]
    walk = await walk_start.start_flow_session(db, actor=desk.tech, ticket_id="T-813", flow_id=flow.id)
    await walk_steps.save_step_note_draft(db, actor=desk.tech, session_id=walk.id, draft="half a thought")
    assert (await stored(db, walk.id)).step_note_draft == "half a thought"
    node = await flow_steps.current_flow_node(db, actor=desk.tech, session_id=walk.id)
    answer = "yes" if node["type"] == "question" else None
    await flow_steps.answer_flow_node(
        db, actor=desk.tech, session_id=walk.id, answer=answer, note="half a thought", node_id=node["id"]
    )
    assert (await stored(db, walk.id)).step_note_draft is None
