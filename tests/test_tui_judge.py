"""The safety judge as the technician meets it on screen."""

from __future__ import annotations

from rflow_tui.ai.errors import JudgeTimeoutError, not_shown
from rflow_tui.ai.judge import Verdict
from rflow_tui.config import LLMSettings
from rflow_tui.services.library import import_flow_doc
from rflow_tui.services.walks import core as walk_core
from rflow_tui.services.walks import start as walk_start
from tests.fakes import ScriptedGenerator, ScriptedJudge
from tests.tui_support import SMALL_FLOW, make_app, seed_tickets, wait_for

ACCOUNT_Q = {
    "id": "q1",
    "type": "question",
    "text": "Microsoft account or local account?",
    "yes_label": "Microsoft account",
    "no_label": "Local account",
}
SAFE_MODE = {"id": "i1", "type": "instruction", "text": "Start Outlook in safe mode."}


class TimingOutJudge(ScriptedJudge):
    """Times out once, then judges like ScriptedJudge."""

    async def judge(self, node):
        if not self.seen:
            self.seen.append(node)
            raise JudgeTimeoutError(not_shown("The safety judge took too long to check the AI's step"))
        return await super().judge(node)


async def resume_walk(pilot, app):
    await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ResumeDialog" and app.screen.active)
    await pilot.press("enter")


async def test_a_judge_outage_shows_no_step_and_offers_retry_escalate_resolve(store, db, desk):
    await seed_tickets(db, desk.tech.account_id, [("T-810", "Outlook will not open", "Bob")])
    walk = await walk_start.start_ai_build_session(
        db, actor=desk.tech, ticket_id="T-810", category="email", problem_text="Outlook"
    )
    generator, judge = ScriptedGenerator(ACCOUNT_Q, ACCOUNT_Q), TimingOutJudge()
    app = make_app(store, desk.tech, generator=generator, judge=judge)
    async with app.run_test(size=(130, 40)) as pilot:
        await resume_walk(pilot, app)
        await wait_for(pilot, lambda: app.screen.query("#do-retry"))
        screen = app.screen
        error = str(screen.query_one("#walk-error").render())
        assert "safety judge took too long" in error and "not shown" in error
        assert not screen.query("#answer-yes") and not screen.query_one("#node-text").display
        assert {b.id for b in screen.query("#answers Button")} == {"do-retry", "do-escalate", "do-resolve"}
        await pilot.press("t")
        await wait_for(pilot, lambda: app.screen.query("#answer-yes"))
        assert "checked by rules only" not in str(app.screen.query_one("#node-kind").render())
    assert len(judge.seen) == 2
    await db.rollback()
    assert (await walk_core.get_session(db, actor=desk.tech, session_id=walk.id)).pending_node["id"] == "q1"


async def test_a_step_the_judge_refuses_twice_is_never_shown(store, db, desk):
    from rflow_tui.safety import rule_catalogue

    rule = rule_catalogue()[0]
    await seed_tickets(db, desk.tech.account_id, [("T-820", "Outlook will not open", "Bob")])
    await walk_start.start_ai_build_session(
        db, actor=desk.tech, ticket_id="T-820", category="email", problem_text="Outlook"
    )
    unsafe = Verdict("unsafe", rule.id, "no")
    app = make_app(
        store, desk.tech, generator=ScriptedGenerator(SAFE_MODE, SAFE_MODE), judge=ScriptedJudge(unsafe, unsafe)
    )
    async with app.run_test(size=(130, 40)) as pilot:
        await resume_walk(pilot, app)
        await wait_for(pilot, lambda: app.screen.query("#do-retry"))
        error = str(app.screen.query_one("#walk-error").render())
        assert f"rule {rule.id}" in error and "safe mode" not in error.lower()
        assert not app.screen.query("#acknowledge")


async def test_with_the_judge_off_an_ai_step_says_it_was_checked_by_rules_only(store, db, desk):
    await seed_tickets(db, desk.tech.account_id, [("T-830", "Outlook will not open", "Bob")])
    await walk_start.start_ai_build_session(
        db, actor=desk.tech, ticket_id="T-830", category="email", problem_text="Outlook"
    )
    judge = ScriptedJudge()
    app = make_app(
        store,
        desk.tech,
        generator=ScriptedGenerator(ACCOUNT_Q),
        judge=judge,
        llm=LLMSettings(judge="off", prefetch=False),
    )
    async with app.run_test(size=(130, 40)) as pilot:
        await resume_walk(pilot, app)
        await wait_for(pilot, lambda: app.screen.query("#answer-yes"))
        assert "checked by rules only" in str(app.screen.query_one("#node-kind").render())
    assert judge.seen == []  # off means off: the judge is never asked


async def test_without_a_judge_the_ai_build_is_offered_as_unavailable(store, db, desk, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    await seed_tickets(db, desk.tech.account_id, [("T-840", "Outlook will not open", "Bob")])
    await import_flow_doc(db, actor=desk.owner, doc=SMALL_FLOW, source="test")  # so the start dialog opens
    app = make_app(
        store, desk.tech, generator=ScriptedGenerator(ACCOUNT_Q), llm=LLMSettings(judge="anthropic", prefetch=False)
    )
    app.ctx._judge = None  # what the settings give: the Anthropic judge, with no key
    async with app.run_test(size=(130, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.query_one("DataTable").row_count > 0)
        app.screen.query_one("DataTable").focus()
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: (
                app.screen.__class__.__name__ == "StartDialog" and app.screen.query_one("OptionList").option_count > 0
            ),
        )
        options = app.screen.query_one("OptionList")
        ai = next(
            options.get_option_at_index(i)
            for i in range(options.option_count)
            if options.get_option_at_index(i).id == "ai"
        )
        assert ai.disabled and "no safety judge" in str(ai.prompt) and "ANTHROPIC_API_KEY" in str(ai.prompt)
