"""Helpers for app tests: a seeded desk, an app bound to it, waiting on the UI."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from rflow_tui.config import AlertSettings, LLMSettings, PsaSettings, Settings, UISettings
from rflow_tui.models import Ticket
from rflow_tui.services.app_context import AppContext
from rflow_tui.tui.app import RflowApp
from tests.fakes import ScriptedJudge

FROZEN_NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
INJECTION = "[bold red]x[/] [@click=app.quit]q[/] \x1b[31mred\x1b[0m"

SMALL_FLOW = {
    "format": "rflow.flow/1",
    "title": "Outlook will not open",
    "category": "email",
    "match_keywords": ["outlook", "open"],
    "version": 1,
    "start": "q-account",
    "nodes": [
        {
            "id": "q-account",
            "type": "question",
            "text": "Does the user sign in with a Microsoft account or a local account?",
            "yes_label": "Microsoft account",
            "no_label": "Local account",
            "yes": "i-safe",
            "no": "esc",
        },
        {
            "id": "i-safe",
            "type": "instruction",
            "text": "Start Outlook in safe mode (outlook.exe /safe).",
            "next": "q-works",
        },
        {"id": "q-works", "type": "question", "text": "Does Outlook open in safe mode?", "yes": "done", "no": "esc"},
        {"id": "done", "type": "resolution", "text": "Disable the faulty add-in and confirm with the user."},
        {"id": "esc", "type": "escalate", "text": "Escalate to the messaging team."},
    ],
}


# Nodes an AI generator serves in the app tests.
ACCOUNT_Q = {
    "id": "q1",
    "type": "question",
    "text": "Microsoft account or local account?",
    "yes_label": "Microsoft account",
    "no_label": "Local account",
}
SAFE_MODE = {"id": "i1", "type": "instruction", "text": "Start Outlook in safe mode."}
FIXED = {"id": "r1", "type": "resolution", "text": "Outlook opens: close the ticket."}


async def seed_tickets(db, account_id: int, rows: list[tuple[str, str, str]]) -> None:
    for n, (ticket_id, subject, requester) in enumerate(rows):
        created = FROZEN_NOW - timedelta(hours=2 * (len(rows) - n), minutes=5)
        db.add(
            Ticket(
                account_id=account_id,
                ticket_id=ticket_id,
                subject=subject,
                requester=requester,
                category="email",
                created_at=created,
                updated_at=created,
            )
        )
    await db.commit()


def make_app(
    store,
    user,
    *,
    generator=None,
    start: str = "auto",
    generator_error: str | None = None,
    judge=None,
    llm: LLMSettings | None = None,
    psa: PsaSettings | None = None,
    alerts: AlertSettings | None = None,
) -> RflowApp:
    """An app on the test store. With a generator and no ``judge``, every step is judged safe.

    Prefetch is off unless ``llm`` turns it on: a scripted generator serves its nodes in
    the order a walk asks for them, and prefetching both answers would take them early.
    """
    _engine, open_db = store
    settings = Settings(
        ui=replace(UISettings(), autosave_seconds=0.2),
        llm=llm or LLMSettings(prefetch=False),
        psa=psa or PsaSettings(),
        alerts=alerts or AlertSettings(),
    )
    ctx = AppContext(settings=settings, engine=None, open_db=open_db, user=user)
    if generator is not None:
        ctx._generator = generator
        ctx._judge = judge or ScriptedJudge()
    else:
        ctx._generator_error = generator_error or "no API key is configured"
    return RflowApp(settings, context=ctx, start=start)


def with_slow_autosave(app: RflowApp) -> RflowApp:
    """Autosave far in the future, so only leaving (or quitting) can save the notes."""
    app.ctx.settings = replace(app.ctx.settings, ui=replace(app.ctx.settings.ui, autosave_seconds=600))
    return app


async def wait_for(pilot, predicate, timeout: float = 15.0) -> None:
    """Let workers run until ``predicate()`` holds; fail loudly if it never does.

    The timeout only bounds a failure: on a loaded two-core machine a walk screen has
    taken over 4 s to show its first step, so 15 s, not a tight 5.
    """
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        await pilot.pause(0.02)
        try:
            if predicate():
                return
        except Exception:
            pass
    raise AssertionError(f"the app never reached the expected state (screens: {pilot.app.screen_stack})")


async def open_resumed_walk(pilot, app) -> None:
    """Take the resume offer the app makes at start for the tech's unfinished walk."""
    await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ResumeDialog" and app.screen.active)
    await pilot.press("enter")
    await wait_for(pilot, lambda: app.screen.__class__.__name__ == "WalkScreen")


async def resume_walk_with_focus_on_answers(pilot, app) -> None:
    """Open the offered walk and put focus on its answers, where single keys work."""
    await open_resumed_walk(pilot, app)
    await wait_for(pilot, lambda: app.screen.query("#answers Button"))
    app.screen.query_one("#answers").focus()


async def fill_escalation(pilot, app, *, reason: str | None = None, category: str = "hardware"):
    """From the walk: open the escalate dialog and, with a ``reason``, fill it in (not sent)."""
    if app.screen.focused is not None and app.screen.focused.id in ("session-notes", "step-note"):
        await pilot.press("escape")  # out of the text field, so "e" is the key and not a letter
    await pilot.press("e")
    await wait_for(pilot, lambda: app.screen.__class__.__name__ == "EscalateDialog")
    if reason is not None:
        app.screen.query_one("#reason-category").value = category
        app.screen.query_one("#escalation-reason").text = reason
        await pilot.pause()
