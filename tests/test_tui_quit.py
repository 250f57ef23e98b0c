"""Quitting never drops the tech's notes: Ctrl+Q saves what the autosave has not yet,
and if that cannot be saved the app stays open until asked twice."""

from __future__ import annotations

from sqlmodel import select

from rflow_tui.models import L1WalkSession
from rflow_tui.services.walks import start as walk_start
from rflow_tui.services.walks import steps as walk_steps
from tests.tui_support import make_app, open_resumed_walk, seed_tickets, wait_for, with_slow_autosave


async def stored_notes(db, session_id: int):
    db.expire_all()
    return (await db.exec(select(L1WalkSession).where(L1WalkSession.id == session_id))).one().walk_notes


async def test_ctrl_q_right_after_typing_saves_the_notes(store, db, desk):
    await seed_tickets(db, desk.tech.account_id, [("T-700", "Keyboard sticky", "Al")])
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-700")
    app = with_slow_autosave(make_app(store, desk.tech))
    async with app.run_test(size=(130, 40)) as pilot:
        await open_resumed_walk(pilot, app)
        app.screen.query_one("#session-notes").focus()
        await pilot.press(*"spilled coffee")
        assert str(app.screen.query_one("#notes-status").render()) == "Editing…"
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: app._exit)
    assert await stored_notes(db, walk.id) == ["spilled coffee"]


async def test_notes_too_large_to_save_hold_the_quit_until_asked_twice(store, db, desk):
    await seed_tickets(db, desk.tech.account_id, [("T-701", "Huge logs", "Bo")])
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-701")
    await walk_steps.update_notes(db, actor=desk.tech, session_id=walk.id, notes=["kept"])
    app = with_slow_autosave(make_app(store, desk.tech))
    async with app.run_test(size=(130, 40)) as pilot:
        await open_resumed_walk(pilot, app)
        app.screen.query_one("#session-notes").text = "log line\n" * 40_000
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: "Not saved" in str(app.screen.query_one("#notes-status").render()))
        assert not app._exit and app.screen.__class__.__name__ == "WalkScreen"
        assert any("Ctrl+Q again" in str(n.message) for n in app._notifications)
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: app._exit)
    assert await stored_notes(db, walk.id) == ["kept"]


def test_sigterm_mid_sentence_saves_the_notes_and_exits_cleanly(tmp_path, db_url):
    """The real ``rflow`` on a pseudo-terminal: type notes, then SIGTERM before the autosave."""
    import asyncio
    import os
    import signal

    from rflow_tui.db import open_store
    from tests.conftest import make_desk
    from tests.pty_support import Terminal

    url = db_url

    async def seed() -> int:
        engine, open_db = await open_store(url)
        async with open_db() as db:
            desk = await make_desk(db)
            walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")
        await engine.dispose()
        return walk.id

    async def notes(session_id: int):
        engine, open_db = await open_store(url)
        async with open_db() as db:
            walk = (await db.exec(select(L1WalkSession).where(L1WalkSession.id == session_id))).one()
        await engine.dispose()
        return walk.walk_notes

    session_id = asyncio.run(seed())
    config = tmp_path / "config.toml"
    config.write_text("[ui]\nautosave_seconds = 600\n")
    env = dict(os.environ, RFLOW_CONFIG=str(config))
    argv = ["--db", url, "--user", "tech@contoso.test"]
    with Terminal(argv, env) as term:
        term.read_until(b"Pick up where you left off")
        term.read_until(" · Ad-hoc · ".encode())  # the list is shown, so Enter acts on it
        term.send(b"\r")  # resume the ad-hoc walk: its notes pane has the focus
        term.read_until(b"Ad-hoc walk")  # the notes have the focus from the walk's mount on
        term.send(b"fan noise, no POST")
        term.read_until(b"POST")
        term.proc.send_signal(signal.SIGTERM)
        assert term.wait(timeout=60) == 0  # a hang guard, not a timing; reading on, as a full pty would block the exit
    assert asyncio.run(notes(session_id)) == ["fan noise, no POST"]
