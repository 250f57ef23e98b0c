"""Streaming and prefetch on the walk screen, through the real SDK against the Messages stand-in.

On a desk that runs the rules alone, the node's text shows sentence by sentence while the
buttons wait for the whole node to pass; with a judge, nothing of the text shows before the
judge passed it, only how far the writing is; with prefetch the next node for each answer
is written while the tech reads, the chosen one shows without a new request, and a step
note throws them away.
"""

from __future__ import annotations

from rflow_tui.ai.anthropic import AnthropicGenerator
from rflow_tui.config import LLMSettings
from rflow_tui.services.walks import core as walk_core
from rflow_tui.services.walks import start as walk_start
from tests.messages_standin import StandIn, answer_chosen, prompt_text
from tests.tui_support import ACCOUNT_Q, make_app, open_resumed_walk, seed_tickets, wait_for
from tests.walk_paths import path_of

SAFE_MODE = {
    "id": "i-safe",
    "type": "instruction",
    "text": "Start Outlook in safe mode with outlook.exe /safe. Watch whether the profile loads. Then press Done.",
    "yes_label": "",
    "no_label": "",
}
PROFILE_Q = {
    "id": "q-profile",
    "type": "question",
    "text": "Sign the user in with a new Outlook profile. Does Outlook open with it?",
    "yes_label": "It opens",
    "no_label": "Still fails",
}


def by_answer(body: dict):
    """The first step, then one node per answer, so each prefetch gets its own."""
    return {None: ACCOUNT_Q, "Microsoft account": SAFE_MODE, "Local account": PROFILE_Q}[answer_chosen(body)]


async def ai_walk(db, desk, ticket_id: str) -> int:
    await seed_tickets(db, desk.tech.account_id, [(ticket_id, "Outlook will not open", "Bob")])
    walk = await walk_start.start_ai_build_session(
        db, actor=desk.tech, ticket_id=ticket_id, category="email", problem_text="Outlook will not open"
    )
    return walk.id


def app_with(store, desk, standin: StandIn, *, prefetch: bool, judge=None, judge_setting: str = "auto"):
    generator = AnthropicGenerator(api_key="sk-test", client=standin.client(), max_retries=0)
    llm = LLMSettings(prefetch=prefetch, judge=judge_setting)
    return make_app(store, desk.tech, generator=generator, judge=judge, llm=llm)


def text(app, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


async def first_question(pilot, app) -> None:
    await open_resumed_walk(pilot, app)
    await wait_for(pilot, lambda: app.screen.query("#answer-yes") and not app.screen.busy)


async def test_the_next_step_streams_in_sentence_by_sentence_and_its_buttons_come_last(store, db, desk):
    session_id = await ai_walk(db, desk, "T-700")
    standin = StandIn(by_answer, chunks=14, chunk_delay=0.12)
    app = app_with(store, desk, standin, prefetch=False, judge_setting="off")
    seen: list[tuple[str, bool]] = []
    async with app.run_test(size=(130, 40)) as pilot:
        await first_question(pilot, app)
        await pilot.press("1")

        def record() -> bool:
            node_text = app.screen.query_one("#node-text")
            if node_text.display and app.screen.busy:
                seen.append((text(app, "#node-text"), bool(app.screen.query("#acknowledge"))))
            return bool(app.screen.query("#acknowledge")) and not app.screen.busy

        await wait_for(pilot, record)
        assert text(app, "#node-text") == SAFE_MODE["text"]
    partial = [shown for shown, _ in seen if shown != ACCOUNT_Q["text"]]
    assert "Start Outlook in safe mode with outlook.exe /safe." in partial  # one sentence, then the next
    assert all(shown.endswith(".") for shown in partial)  # never half a sentence
    assert not any(done for _, done in seen)  # no Done button while the node was still being written
    walk = await walk_core.get_session(db, actor=desk.tech, session_id=session_id)
    assert walk.pending_node["id"] == "i-safe"


async def test_a_prefetched_answer_shows_at_once_without_a_new_request(store, db, desk):
    session_id = await ai_walk(db, desk, "T-701")
    standin = StandIn(by_answer, chunks=4)
    app = app_with(store, desk, standin, prefetch=True)
    async with app.run_test(size=(130, 40)) as pilot:
        await first_question(pilot, app)
        prefetcher = app.screen._prefetcher
        await wait_for(
            pilot, lambda: len(standin.requests) == 3 and all(p.ready for p in prefetcher.prefetches.values())
        )
        assert sorted(answer_chosen(body) for body in standin.requests[1:]) == ["Local account", "Microsoft account"]
        await pilot.press("2")
        await wait_for(pilot, lambda: app.screen.query("#answer-yes") and app.screen.node["id"] == "q-profile")
        assert "It opens" in str(app.screen.query_one("#answer-yes").render())
        # the answer itself sent nothing: the requests since are the new question's own prefetches
        assert all(answer_chosen(body) in ("It opens", "Still fails") for body in standin.requests[3:])
    assert standin.most_in_flight <= 2
    walk = await walk_core.get_session(db, actor=desk.tech, session_id=session_id)
    assert walk.pending_node["id"] == "q-profile" and [s["answer_label"] for s in (await path_of(db, walk))] == [
        "Local account"
    ]


async def test_a_step_note_throws_the_prefetch_away_and_the_answer_is_written_with_the_note(store, db, desk):
    session_id = await ai_walk(db, desk, "T-702")
    standin = StandIn(by_answer, chunks=6, chunk_delay=0.3)
    app = app_with(store, desk, standin, prefetch=True)
    async with app.run_test(size=(130, 40)) as pilot:
        await first_question(pilot, app)
        await wait_for(pilot, lambda: standin.in_flight == 2)
        await pilot.press("c", *"uses a shared mailbox")
        await wait_for(pilot, lambda: standin.in_flight == 0)  # both prefetches stopped
        assert app.screen._prefetcher.prefetches == {}
        await pilot.press("enter", "1")
        await wait_for(pilot, lambda: app.screen.query("#acknowledge") and not app.screen.busy)
    with_note = [body for body in standin.requests if "uses a shared mailbox" in prompt_text(body)]
    assert len(with_note) >= 1 and answer_chosen(with_note[0]) == "Microsoft account"
    walk = await walk_core.get_session(db, actor=desk.tech, session_id=session_id)
    assert (await path_of(db, walk))[0]["l1_note"] == "uses a shared mailbox" and walk.pending_node["id"] == "i-safe"


async def test_with_a_judge_no_text_of_the_step_shows_before_both_layers_passed_it(store, db, desk):
    """The judge refuses the first try: neither that try nor the second is on screen while
    being written; the wait line counts the words instead; the passed step then shows whole."""
    from rflow_tui.ai.judge import Verdict
    from rflow_tui.safety import rule_catalogue
    from tests.fakes import ScriptedJudge

    await ai_walk(db, desk, "T-702")
    standin = StandIn(by_answer, chunks=14, chunk_delay=0.08)
    judge = ScriptedJudge()
    app = app_with(store, desk, standin, prefetch=False, judge=judge)
    texts_while_writing: set[str] = set()
    wait_lines: list[str] = []
    async with app.run_test(size=(130, 40)) as pilot:
        await first_question(pilot, app)
        judge.verdicts.append(Verdict("unsafe", rule=rule_catalogue()[0].id, reason="scripted refusal"))
        judged_before = len(judge.seen)
        await pilot.press("1")

        def record() -> bool:
            if app.screen.busy:
                if app.screen.query_one("#node-text").display:
                    texts_while_writing.add(text(app, "#node-text"))
                wait_lines.append(text(app, "#walk-wait"))
            return bool(app.screen.query("#acknowledge")) and not app.screen.busy

        await wait_for(pilot, record)
        assert text(app, "#node-text") == SAFE_MODE["text"]
    assert [node.text for node in judge.seen[judged_before:]] == [SAFE_MODE["text"]] * 2  # refused, then passed
    assert texts_while_writing <= {ACCOUNT_Q["text"]}  # only the step already answered, never the new one
    assert any("words, shown once the safety check passes" in line for line in wait_lines)


async def test_the_walk_screen_says_what_was_withheld_from_the_ai(store, db, desk):
    await seed_tickets(db, desk.tech.account_id, [("T-703", "Outlook will not open", "Bob")])
    await walk_start.start_ai_build_session(
        db,
        actor=desk.tech,
        ticket_id="T-703",
        category="email",
        problem_text="Outlook will not open; my password is Hunter2! and mail goes to anna.k@contoso.com",
    )
    app = app_with(store, desk, StandIn(by_answer), prefetch=False)
    async with app.run_test(size=(130, 40)) as pilot:
        await first_question(pilot, app)
        await wait_for(pilot, lambda: app.screen.query_one("#withheld").display)
        said = text(app, "#withheld")
        assert "withheld from the AI" in said and "password" in said and "e-mail address" in said
        assert "Hunter2" not in said


async def test_a_hit_answered_at_once_is_stored_after_the_answer_before_it_and_counts_every_call(store, db, desk):
    """The node a hit shows is stored behind it; an answer given before that write is done
    waits for it, so both answers are stored in order, and the walk's tokens count the calls."""
    from rflow_tui.services.walks.reads import read_transcript

    done = {
        "id": "r-done",
        "type": "resolution",
        "text": "Outlook opens: close the ticket.",
        "yes_label": "",
        "no_label": "",
    }

    def walk_on(body: dict):
        return done if answer_chosen(body) in ("It opens", "Still fails") else by_answer(body)

    session_id = await ai_walk(db, desk, "T-702")
    standin = StandIn(walk_on, chunks=2)
    app = app_with(store, desk, standin, prefetch=True, judge_setting="off")
    async with app.run_test(size=(130, 40)) as pilot:
        await first_question(pilot, app)
        prefetcher = app.screen._prefetcher
        await wait_for(
            pilot, lambda: len(prefetcher.prefetches) == 2 and all(p.ready for p in prefetcher.prefetches.values())
        )
        await pilot.press("2")
        await wait_for(pilot, lambda: app.screen.node["id"] == "q-profile" and app.screen.query("#answer-yes"))
        await wait_for(pilot, lambda: prefetcher.ready("yes") is not None)
        await pilot.press("1")
        await wait_for(pilot, lambda: app.screen.node["id"] == "r-done" and app.screen.node.get("token"))
    walk = await walk_core.get_session(db, actor=desk.tech, session_id=session_id)
    assert [s["answer_label"] for s in await path_of(db, walk)] == ["Local account", "It opens"]
    assert walk.pending_node["id"] == "r-done"
    tokens = (await read_transcript(db, actor=desk.tech, session_id=session_id))["ai_tokens"]
    assert tokens["generator"]["calls"] == len(standin.requests)  # the siblings thrown away count too
    assert tokens["generator"]["input_tokens"] == standin.usage["input_tokens"]
