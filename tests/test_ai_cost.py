"""What an AI walk costs, counted from the service's own usage, and the bounds on it: the
prompt cache, a thrown-away prefetch that stops streaming, an unsafe step asked for twice
at most. Real SDKs against the loopback stand-ins (tests/messages_standin.py, openai_standin.py)."""

from __future__ import annotations

import asyncio
import json

import pytest

from rflow_tui.ai.anthropic import AnthropicGenerator
from rflow_tui.ai.anthropic_judge import AnthropicJudge
from rflow_tui.ai.base import NodeContext
from rflow_tui.ai.errors import UnsafeNodeError
from rflow_tui.ai.openai import OpenAIGenerator
from rflow_tui.ai.openai_judge import OpenAIJudge
from rflow_tui.ai.prefetch import Prefetcher
from rflow_tui.ai.step import next_node
from rflow_tui.ai.usage import Meter, metered
from rflow_tui.services.walks import ai_steps
from rflow_tui.services.walks import start as walk_start
from rflow_tui.services.walks.reads import read_transcript
from tests import openai_standin
from tests.messages_standin import PromptCache, StandIn, prompt_text, system_text, tokens, user_text
from tests.tui_support import ACCOUNT_Q, FIXED, SAFE_MODE

SAFE = {"verdict": "safe", "rule": "", "reason": "routine"}
CONTEXT = NodeContext(problem_text="Outlook keeps asking for my password", category="email")


def answers(*nodes: dict):
    """A reply that answers the judge 'safe' and the generator with ``nodes`` in turn (the last one after)."""
    queue = list(nodes)

    def reply(body: dict) -> dict:
        if "independent safety reviewer" in system_text(body):
            return SAFE
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return reply


def models(standin: StandIn) -> tuple[AnthropicGenerator, AnthropicJudge]:
    return (
        AnthropicGenerator(api_key="sk-standin", client=standin.client(), max_retries=0),
        AnthropicJudge(api_key="sk-standin", client=standin.client(), max_retries=0),
    )


async def two_step_walk(db, desk, standin: StandIn) -> dict:
    generator, judge = models(standin)
    walk = await walk_start.start_ai_build_session(
        db, actor=desk.tech, ticket_id="T-1", category="email", problem_text="Outlook keeps asking for my password"
    )
    node = await ai_steps.advance_ai_build(db, actor=desk.tech, session_id=walk.id, generator=generator, judge=judge)
    await ai_steps.advance_ai_build(
        db,
        actor=desk.tech,
        session_id=walk.id,
        generator=generator,
        judge=judge,
        node_id=node["id"],
        token=node["token"],
        answer="yes",
    )
    return await read_transcript(db, actor=desk.tech, session_id=walk.id)


async def test_a_walks_tokens_are_the_services_usage_summed_generator_and_judge(db, desk):
    standin = StandIn(answers(ACCOUNT_Q, FIXED))
    transcript = await two_step_walk(db, desk, standin)
    tokens = transcript["ai_tokens"]
    assert tokens["generator"]["calls"] == 2 and tokens["judge"]["calls"] == 2
    judged = [body for body in standin.requests if "independent safety reviewer" in system_text(body)]
    assert len(judged) == 2  # the judge's own calls are counted, not only the generator's
    assert tokens["all"]["input_tokens"] == standin.usage["input_tokens"]
    assert tokens["all"]["output_tokens"] == standin.usage["output_tokens"]
    assert tokens["all"]["input_tokens"] == tokens["generator"]["input_tokens"] + tokens["judge"]["input_tokens"]
    exported = json.loads(json.dumps(transcript))
    assert exported["ai_tokens"]["judge"]["input_tokens"] > 0


async def test_a_repeated_prefix_is_read_from_the_cache_and_counted_so(db, desk):
    """The stand-in caches what is marked once it is long enough (as the Messages API does):
    the second step's system prompt and ticket are cache reads, and the walk's count says so."""
    standin = StandIn(answers(ACCOUNT_Q, FIXED), cache=PromptCache(minimum=200))
    transcript = await two_step_walk(db, desk, standin)
    tokens = transcript["ai_tokens"]
    assert standin.usage["cache_read_input_tokens"] > 0 and standin.usage["cache_creation_input_tokens"] > 0
    for field in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"):
        assert tokens["all"][field] == standin.usage[field]
    assert tokens["generator"]["cache_read_input_tokens"] > 0 and tokens["judge"]["cache_read_input_tokens"] > 0


async def test_a_prefix_shorter_than_the_models_minimum_is_billed_in_full(db, desk):
    standin = StandIn(answers(ACCOUNT_Q, FIXED), cache=PromptCache(minimum=100_000))
    tokens = (await two_step_walk(db, desk, standin))["ai_tokens"]
    assert tokens["all"]["cache_read_input_tokens"] == 0 and tokens["all"]["cache_creation_input_tokens"] == 0
    assert tokens["all"]["input_tokens"] == standin.usage["input_tokens"] > 0


async def until(predicate, what: str) -> None:
    for _ in range(2000):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never: {what}")


async def test_the_sibling_prefetch_stops_streaming_when_an_answer_is_given_and_its_input_still_counts():
    standin = StandIn(answers(SAFE_MODE), chunks=12, chunk_delay=0.2)
    generator, judge = models(standin)
    meter = Meter()
    prefetcher = Prefetcher(generator, judge, 20.0, meter)
    yes = NodeContext(problem_text="Outlook keeps asking", category="email")
    no = NodeContext(problem_text="Outlook keeps asking, and Teams too", category="email")
    prefetcher.start({"yes": yes, "no": no})
    await until(lambda: standin.in_flight == 2, "both prefetches streaming")
    claimed = prefetcher.claim("yes", yes)
    assert claimed is not None
    await until(lambda: standin.closed_early == 1, "the sibling's stream closed")
    assert standin.in_flight == 1  # the claimed one streams on; nothing more is sent for the other
    await claimed.result()
    assert standin.closed_early == 1
    counted = meter.take()["generator"]
    assert counted["calls"] == 2  # the thrown-away stream was billed its input: it is counted
    generated = [body for body in standin.requests if "independent safety reviewer" not in system_text(body)]
    assert counted["input_tokens"] == sum(tokens(prompt_text(body)) for body in generated)


UNSAFE = {"id": "i-av", "type": "instruction", "text": "Turn off Windows Defender real-time protection."}


async def test_an_unsafe_step_costs_two_tries_then_says_so_with_retry():
    """A claimed prefetch refused twice is the step's answer: no third and fourth try."""
    standin = StandIn(answers(UNSAFE))
    generator, judge = models(standin)
    prefetcher = Prefetcher(generator, judge, 20.0)
    prefetcher.start({None: CONTEXT})
    claimed = prefetcher.claim(None, CONTEXT)
    with pytest.raises(UnsafeNodeError) as refused:
        await next_node(generator, CONTEXT, judge, deadline_seconds=20.0, prefetch=claimed)
    generated = [body for body in standin.requests if "independent safety reviewer" not in system_text(body)]
    assert len(generated) == 2
    assert "twice" in str(refused.value) and "t asks it once more" in str(refused.value)


async def test_the_openai_models_count_their_usage_cached_tokens_apart():
    """An OpenAI-compatible server reports ``prompt_tokens`` (cached ones included) and
    ``prompt_tokens_details.cached_tokens``: counted as input and cache reads, for both models."""
    standin = openai_standin.StandIn(answers_openai(), cached_tokens=40)
    generator = OpenAIGenerator(api_key="sk-standin", client=standin.client(), max_retries=0)
    judge = OpenAIJudge(api_key="sk-standin", client=standin.client(), max_retries=0)
    meter = Meter()
    with metered(meter):
        await next_node(generator, CONTEXT, judge, deadline_seconds=20.0)
    counted = meter.take()
    for role in ("generator", "judge"):
        assert counted[role]["calls"] == 1 and counted[role]["cache_read_input_tokens"] == 40
    assert sum(counted[r]["input_tokens"] + 40 for r in counted) == standin.prompt_tokens


def answers_openai():
    def reply(body: dict) -> dict:
        system = body["messages"][0]["content"]
        return SAFE if "independent safety reviewer" in system else SAFE_MODE

    return reply


MFA_PUSH = {"id": "i-mfa", "type": "instruction", "text": "Ask the user to approve the sign-in prompt on their phone."}


def judge_refusing(text: str, *nodes: dict):
    """The generator answers ``nodes`` in turn; the judge calls a step holding ``text`` unsafe."""
    generate = answers(*nodes)

    def reply(body: dict) -> dict:
        if "independent safety reviewer" not in system_text(body):
            return generate(body)
        if text in user_text(body):
            return {"verdict": "unsafe", "rule": "other", "reason": "an MFA prompt nobody expects"}
        return SAFE

    return reply


def judged_bodies(standin: StandIn) -> list[dict]:
    return [body for body in standin.requests if "independent safety reviewer" in system_text(body)]


async def test_judged_on_claim_the_siblings_cost_no_judge_call_and_the_claimed_one_is_judged_before_it_is_served():
    standin = StandIn(answers(SAFE_MODE))
    generator, judge = models(standin)
    prefetcher = Prefetcher(generator, judge, 20.0, judge_ahead=False)
    yes = NodeContext(problem_text="Outlook keeps asking", category="email")
    no = NodeContext(problem_text="Outlook keeps asking, and Teams too", category="email")
    prefetcher.start({"yes": yes, "no": no})
    await until(lambda: prefetcher.ready("yes") is not None and prefetcher.ready("no") is not None, "both written")
    assert judged_bodies(standin) == []  # written and passed by the rules; no judge call yet
    checked = await next_node(generator, yes, judge, deadline_seconds=20.0, prefetch=prefetcher.claim("yes", yes))
    assert checked.judge is judge and checked.fits(yes, judge)  # only a node this desk's judge passed is servable
    assert len(judged_bodies(standin)) == 1


async def test_a_claimed_prefetch_the_judge_refuses_never_shows_and_gets_one_more_try():
    standin = StandIn(judge_refusing("sign-in prompt", MFA_PUSH, SAFE_MODE))
    generator, judge = models(standin)
    prefetcher = Prefetcher(generator, judge, 20.0, judge_ahead=False)
    prefetcher.start({None: CONTEXT})
    await until(lambda: prefetcher.ready(None) is not None, "the prefetch written")
    shown: list[str] = []
    checked = await next_node(
        generator,
        CONTEXT,
        judge,
        deadline_seconds=20.0,
        prefetch=prefetcher.claim(None, CONTEXT),
        on_preview=lambda kind, text: shown.append(text),
        on_progress=lambda words: None,
    )
    assert checked.node["text"] == SAFE_MODE["text"]
    assert not any("sign-in" in text for text in shown)
    generated = [body for body in standin.requests if "independent safety reviewer" not in system_text(body)]
    assert len(generated) == 2 and "rejected by the safety check" in user_text(generated[1])
