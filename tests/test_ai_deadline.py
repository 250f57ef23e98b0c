"""One deadline per AI step, through the real SDK against the Messages stand-in.

The outcome is asserted, never a duration: a short deadline (1 s) and a guard far
above it (``GUARD``), which only an unbounded wait (a 90 s retry-after, two
20 s attempts) can reach. A retry-after longer than the step has left is named as
such, with its wait, never slept through and never called a timeout. How long the timeout
really takes is in BENCHMARKS.md.
"""

from __future__ import annotations

import asyncio

import pytest

from rflow_tui.ai.anthropic import AnthropicGenerator
from rflow_tui.ai.anthropic_judge import AnthropicJudge
from rflow_tui.ai.base import NodeContext
from rflow_tui.ai.errors import GenerationTimeoutError, JudgeRateLimitedError, OverloadedError, RateLimitedError
from rflow_tui.ai.generate import next_valid_node
from tests.messages_standin import Stall, StandIn, Status

NODE = {"id": "q-account", "type": "question", "text": "Microsoft account or local account?"}
NODE = {**NODE, "yes_label": "Microsoft account", "no_label": "Local account"}
CONTEXT = NodeContext(problem_text="Outlook keeps asking for my password", category="email")
SAFE = {"verdict": "safe", "rule": "", "reason": "routine"}
DEADLINE = 1.0
JUDGE_DEADLINE = 2.5  # the node must come back with more than MIN_REQUEST_SECONDS left for the judge, under load too
GUARD = 15.0  # far above the deadline, far below any wait the deadline must cut short


def generator(standin: StandIn, **kwargs) -> AnthropicGenerator:
    kwargs.setdefault("timeout", 20.0)
    kwargs.setdefault("max_retries", 1)
    return AnthropicGenerator(api_key="sk-test", client=standin.client(), **kwargs)


async def step(gen, judge=None, deadline: float = DEADLINE):
    return await asyncio.wait_for(next_valid_node(gen, CONTEXT, judge, deadline_seconds=deadline), GUARD)


async def test_a_stalled_server_gives_the_timeout_message_at_the_deadline_not_after_every_attempt():
    standin = StandIn(Stall())
    with pytest.raises(GenerationTimeoutError, match="The AI took too long"):
        await step(generator(standin, timeout=20.0, max_retries=5))
    assert len(standin.requests) == 1  # the one attempt the deadline allowed


@pytest.mark.parametrize("header", [{"retry-after": "90"}, {"retry-after-ms": "90000"}])
async def test_a_retry_after_longer_than_what_is_left_says_it_is_rate_limited_and_for_how_long(header):
    standin = StandIn(Status(429, header), NODE)
    with pytest.raises(RateLimitedError, match="rate-limiting this desk and asks us to wait 90 s") as raised:
        await step(generator(standin))
    assert raised.value.retry_after == pytest.approx(90, abs=1)
    assert len(standin.requests) == 1  # never slept 90 s for a second try


async def test_an_overloaded_service_with_a_long_retry_after_says_so_and_for_how_long():
    standin = StandIn(Status(529, {"retry-after": "30"}), NODE)
    with pytest.raises(OverloadedError, match="overloaded and asks us to wait 30 s") as raised:
        await step(generator(standin))
    assert raised.value.retry_after == pytest.approx(30, abs=1)


async def test_a_retry_after_then_a_stall_still_ends_at_the_deadline():
    standin = StandIn(Status(529, {"retry-after": "0.2"}), Stall())
    with pytest.raises(GenerationTimeoutError):
        await step(generator(standin), deadline=1.5)
    assert len(standin.requests) == 2


async def test_a_short_retry_after_within_the_deadline_is_honoured_and_the_retry_serves_the_node():
    standin = StandIn(Status(429, {"retry-after": "0.1"}), NODE)
    node = await step(generator(standin), deadline=5.0)
    assert node["id"] == "q-account" and len(standin.requests) == 2


async def test_the_judge_waits_inside_the_same_deadline():
    judge_standin = StandIn(Stall())
    judge = AnthropicJudge(api_key="sk-test", client=judge_standin.client(), timeout=10.0, max_retries=1)
    with pytest.raises(GenerationTimeoutError, match="The AI took too long"):
        await step(generator(StandIn(NODE)), judge=judge, deadline=JUDGE_DEADLINE)
    assert len(judge_standin.requests) == 1


async def test_the_judge_obeys_a_retry_after_only_within_what_is_left_and_names_the_wait():
    judge_standin = StandIn(Status(429, {"retry-after": "90"}), SAFE)
    judge = AnthropicJudge(api_key="sk-test", client=judge_standin.client(), timeout=10.0, max_retries=1)
    with pytest.raises(JudgeRateLimitedError, match="asks us to wait 90 s") as raised:
        await step(generator(StandIn(NODE)), judge=judge, deadline=JUDGE_DEADLINE)
    assert raised.value.retry_after == pytest.approx(90, abs=1)
    assert len(judge_standin.requests) == 1


def test_the_sdk_client_never_retries_on_its_own():
    """The SDK would obey any retry-after; rflow retries itself, inside the deadline."""
    gen = AnthropicGenerator(api_key="sk-test", base_url="http://127.0.0.1:9", max_retries=3)
    assert gen.client().max_retries == 0 and gen.max_retries == 3


async def test_no_request_is_sent_with_too_little_of_the_step_left():
    """A request sent with a moment left could not bring a node back: the tech gets the
    timeout message at once, and the service is not called for nothing."""
    from rflow_tui.ai import retry
    from rflow_tui.ai.deadline import MIN_REQUEST_SECONDS, step_deadline

    sent = []

    async def request(timeout: float) -> dict:
        sent.append(timeout)
        return NODE

    with pytest.raises(GenerationTimeoutError, match="The AI took too long"):
        async with step_deadline(DEADLINE):
            await asyncio.sleep(DEADLINE - MIN_REQUEST_SECONDS / 2)
            await retry.within_deadline(request, timeout=20.0, max_retries=1, retry_wait=lambda exc, attempt: None)
    assert sent == []
