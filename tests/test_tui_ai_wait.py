"""Waiting for the AI on the walk screen, through the real SDK against the Messages stand-in.

While the AI writes the next step the tech sees the seconds go by, Esc stops it
(the answer stays saved and a retry follows), and escalate and resolve work.
"""

from __future__ import annotations

import pytest
from sqlmodel import select

from rflow_tui.ai.anthropic import AnthropicGenerator
from rflow_tui.config import LLMSettings
from rflow_tui.models import L1WalkSession
from rflow_tui.services.walks import start as walk_start
from rflow_tui.tui.widgets import node_card
from tests.messages_standin import Stall, StandIn, Status
from tests.tui_support import ACCOUNT_Q, SAFE_MODE, make_app, open_resumed_walk, seed_tickets, wait_for
from tests.walk_paths import path_of


async def ai_walk(db, desk, ticket_id: str) -> int:
    await seed_tickets(db, desk.tech.account_id, [(ticket_id, "Outlook will not open", "Bob")])
    walk = await walk_start.start_ai_build_session(
        db, actor=desk.tech, ticket_id=ticket_id, category="email", problem_text="Outlook will not open"
    )
    return walk.id


def sdk_generator(standin: StandIn, max_retries: int = 0) -> AnthropicGenerator:
    return AnthropicGenerator(api_key="sk-test", client=standin.client(), max_retries=max_retries)


async def stored(db, session_id: int) -> L1WalkSession:
    await db.rollback()
    return (await db.exec(select(L1WalkSession).where(L1WalkSession.id == session_id))).one()


def text(app, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


async def answer_and_wait(pilot, app, standin: StandIn) -> None:
    """Answer the first question, then wait until the stand-in holds the next request."""
    await open_resumed_walk(pilot, app)
    await wait_for(pilot, lambda: app.screen.query("#answer-yes") and not app.screen.busy)
    await pilot.press("1")
    await wait_for(pilot, lambda: standin.in_flight == 1 and app.screen.generation is not None)


async def test_the_wait_shows_the_seconds_and_esc_stops_the_ai_keeping_the_answer(store, db, desk, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(node_card, "clock", lambda: now[0])
    session_id = await ai_walk(db, desk, "T-900")
    standin = StandIn(ACCOUNT_Q, Stall(), SAFE_MODE)
    app = make_app(store, desk.tech, generator=sdk_generator(standin))
    async with app.run_test(size=(130, 40)) as pilot:
        await answer_and_wait(pilot, app, standin)
        await wait_for(pilot, lambda: "writing the next step · 0 s" in text(app, "#walk-wait"))
        assert "Esc stops the AI" in text(app, "#node-help")
        assert {b.id for b in app.screen.query("#answers Button")} == {"do-stop", "do-escalate", "do-resolve"}
        now[0] += 7.4
        await wait_for(pilot, lambda: "writing the next step · 7 s" in text(app, "#walk-wait"))

        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen.query("#do-retry"))
        assert app.screen.__class__.__name__ == "WalkScreen"  # Esc stopped the AI; it did not leave the walk
        assert "You stopped the AI" in text(app, "#walk-error")
        assert not app.screen.query_one("#walk-wait").display
        await wait_for(pilot, lambda: standin.in_flight == 0)  # the request itself was cancelled
        walk = await stored(db, session_id)
        assert [step["id"] for step in (await path_of(db, walk))] == ["q1"] and walk.pending_node is None

        await pilot.press("t")
        await wait_for(pilot, lambda: app.screen.query("#acknowledge"))
        assert "Start Outlook in safe mode." in text(app, "#node-text")
    walk = await stored(db, session_id)
    assert walk.pending_node["id"] == "i1" and len(await path_of(db, walk)) == 1
    assert len(standin.requests) == 3


def fill_escalation(dialog) -> None:
    dialog.query_one("#reason-category").value = "hardware"
    dialog.query_one("#escalation-reason").text = "Needs a new profile; the AI is too slow today"


def fill_resolution(dialog) -> None:
    dialog.query_one("#helpful-no").value = True
    dialog.query_one("#resolution-notes").text = "Rebuilt the profile by hand"


@pytest.mark.parametrize(
    "key, dialog, fill, status",
    [("e", "EscalateDialog", fill_escalation, "escalated"), ("r", "ResolveDialog", fill_resolution, "resolved")],
)
async def test_escalate_and_resolve_work_while_the_ai_writes_and_stop_it(store, db, desk, key, dialog, fill, status):
    session_id = await ai_walk(db, desk, "T-901")
    standin = StandIn(ACCOUNT_Q, Stall())
    app = make_app(store, desk.tech, generator=sdk_generator(standin))
    async with app.run_test(size=(130, 40)) as pilot:
        await answer_and_wait(pilot, app, standin)
        await pilot.press(key)
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == dialog)
        fill(app.screen)
        await pilot.pause()
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "PickerScreen")
        await wait_for(pilot, lambda: standin.in_flight == 0)  # the AI was stopped
    walk = await stored(db, session_id)
    assert walk.status == status and [step["id"] for step in (await path_of(db, walk))] == ["q1"]
    assert walk.pending_node is None


async def test_a_rate_limit_past_the_deadline_counts_down_and_t_spends_no_call_until_the_wait_is_over(store, db, desk):
    session_id = await ai_walk(db, desk, "T-903")
    standin = StandIn(ACCOUNT_Q, Status(429, {"retry-after": "3"}), SAFE_MODE)
    llm = LLMSettings(step_deadline_seconds=1.0, prefetch=False)
    app = make_app(store, desk.tech, generator=sdk_generator(standin, max_retries=2), llm=llm)
    async with app.run_test(size=(130, 40)) as pilot:
        await open_resumed_walk(pilot, app)
        await wait_for(pilot, lambda: app.screen.query("#answer-yes") and not app.screen.busy)
        await pilot.press("1")
        # more than the 1 s deadline: said as a rate limit with its wait, not as "took too long"
        await wait_for(pilot, lambda: app.screen.query("#do-retry"), timeout=10)
        assert "rate-limiting this desk and asks us to wait 3 s" in text(app, "#walk-error")
        assert "t works again in" in text(app, "#walk-error")
        assert len(standin.requests) == 2  # no second try was slept for
        await pilot.press("t")  # inside the wait: refused here, no call spent
        await pilot.pause()
        assert len(standin.requests) == 2
        await wait_for(pilot, lambda: app.screen.card.retry_wait_left == 0, timeout=10)
        await pilot.press("t")
        await wait_for(pilot, lambda: app.screen.query("#acknowledge"))
    walk = await stored(db, session_id)
    assert walk.pending_node["id"] == "i1" and [step["id"] for step in (await path_of(db, walk))] == ["q1"]


async def test_the_ai_sdk_is_made_ready_while_the_tech_reads_the_start_dialog(store, db, desk):
    """The first AI step must not wait seconds for the SDK import: the generator's and the
    judge's clients are built once the start dialog opens, not at app start."""
    from rflow_tui.ai.anthropic_judge import AnthropicJudge

    await seed_tickets(db, desk.tech.account_id, [("T-960", "Outlook will not open", "Bob")])
    generator = AnthropicGenerator(api_key="sk-test", base_url="http://127.0.0.1:9")
    judge = AnthropicJudge(api_key="sk-test", base_url="http://127.0.0.1:9")
    app = make_app(store, desk.tech, generator=generator, judge=judge)
    async with app.run_test(size=(130, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.query_one("DataTable").row_count > 0)
        assert generator._client is None and judge._client is None  # nothing at start-up
        app.screen.query_one("DataTable").focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "StartDialog")
        await wait_for(pilot, lambda: generator._client is not None and judge._client is not None)
        client = generator._client
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "PickerScreen")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "StartDialog")
        await pilot.pause()
        assert generator.client() is client  # built once, and the one the steps use
