"""The Anthropic safety judge: one Messages API call per candidate step, JSON-schema output.

The request carries the rule catalogue (system prompt) and the candidate step inside
a ``<node>`` data block, and nothing else. The SDK is imported on first use; the
timeout is the judge's own (``[llm] judge_timeout_seconds``), shorter than the
generator's, because a technician is already waiting for the step.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from rflow_tui.ai import usage as ai_usage
from rflow_tui.ai.anthropic_client import cached_text, failure_kind, message_text, sdk_client, within_deadline
from rflow_tui.ai.contract import judge_system_prompt, judge_user_message, verdict_schema
from rflow_tui.ai.errors import JudgeDeclinedError, MalformedVerdictError, NoJudgeError, not_shown
from rflow_tui.ai.errors import JudgeNetworkError as JudgeNetworkError  # named here by callers that catch it
from rflow_tui.ai.failures import judge_failure
from rflow_tui.ai.judge import CandidateNode, Verdict
from rflow_tui.ai.model_call import ModelCaller

DEFAULT_JUDGE_MODEL = "claude-haiku-5-5"  # fast; a verdict is a few dozen tokens
MAX_TOKENS = 400


class AnthropicJudge(ModelCaller):
    name = "anthropic"

    default_model = DEFAULT_JUDGE_MODEL
    default_timeout = 10.0
    sdk_client = staticmethod(sdk_client)

    @classmethod
    def from_settings(cls, llm: Any) -> AnthropicJudge:
        from rflow_tui.ai.registry import own_connection

        key, base_url = own_connection(llm, "anthropic")
        api_key = key or os.environ.get("ANTHROPIC_API_KEY", "")
        if not api_key:
            raise NoJudgeError(
                "the Anthropic safety judge needs an API key: set ANTHROPIC_API_KEY or `api_key` under [llm], "
                "or choose another judge with `judge` under [llm]"
            )
        return cls(
            api_key=api_key,
            model=llm.judge_model or DEFAULT_JUDGE_MODEL,
            base_url=base_url or os.environ.get("ANTHROPIC_BASE_URL") or None,
            timeout=llm.judge_timeout_seconds,
            max_retries=llm.max_retries,
        )

    async def judge(self, node: CandidateNode) -> Verdict:
        client = self.client()
        started = time.perf_counter()

        async def attempt(timeout: float) -> Any:
            message = await client.messages.create(
                model=self.model,
                max_tokens=MAX_TOKENS,
                system=cached_text(judge_system_prompt()),  # the rule catalogue: the same for every step
                messages=[{"role": "user", "content": judge_user_message(node)}],
                output_config={"format": {"type": "json_schema", "schema": verdict_schema()}},
                timeout=timeout,
            )
            ai_usage.record("judge", ai_usage.anthropic_usage(getattr(message, "usage", None)))
            return message

        try:
            message = await within_deadline(attempt, timeout=self.timeout, max_retries=self.max_retries)
        except Exception as exc:  # mapped to the judge's own kinds; anything else is re-raised
            raise judge_failure(exc, failure_kind(exc)) from exc
        self.last_latency_ms = round((time.perf_counter() - started) * 1000)
        self.last_usage = ai_usage.anthropic_usage(getattr(message, "usage", None))
        if message.stop_reason in ("refusal", "max_tokens"):
            raise JudgeDeclinedError(not_shown("The safety judge gave no verdict on the AI's step"))
        try:
            raw = json.loads(message_text(message))
        except json.JSONDecodeError as exc:
            raise MalformedVerdictError(not_shown("The safety judge's answer was not valid JSON")) from exc
        try:
            return Verdict.parse(raw, model=self.model)
        except MalformedVerdictError as exc:
            raise MalformedVerdictError(not_shown(str(exc))) from exc
