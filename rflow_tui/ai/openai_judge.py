"""The OpenAI-compatible safety judge: one Chat Completions call per candidate step, with
the verdict's JSON schema as a strict ``response_format``.

It sends what the Anthropic judge sends (``ai.contract``: the rule catalogue, the step
in a ``<node>`` block, nothing of the ticket), so a desk on a private model keeps its
judge private too. A server that refuses ``json_schema`` is asked with the schema in
the prompt, as the generator is.
"""

from __future__ import annotations

import json
import time
from typing import Any

from rflow_tui.ai import usage as ai_usage
from rflow_tui.ai.contract import judge_system_prompt, judge_user_message, verdict_schema
from rflow_tui.ai.errors import JudgeDeclinedError, MalformedVerdictError, NoJudgeError, not_shown
from rflow_tui.ai.failures import judge_failure
from rflow_tui.ai.judge import CandidateNode, Verdict
from rflow_tui.ai.model_call import ModelCaller
from rflow_tui.ai.openai import DEFAULT_MODEL
from rflow_tui.ai.openai_client import (
    JSON_SCHEMA,
    KEY_ENV,
    connection,
    failure_kind,
    json_text,
    request_shape,
    sdk_client,
    structured,
    usage_of,
)

MAX_TOKENS = 1024  # a verdict is a few dozen tokens; a reasoning model thinks first


class OpenAIJudge(ModelCaller):
    name = "openai"

    default_model = DEFAULT_MODEL
    default_timeout = 10.0
    sdk_client = staticmethod(sdk_client)
    mode = JSON_SCHEMA  # until a server refuses it (then per instance)

    @classmethod
    def from_settings(cls, llm: Any) -> OpenAIJudge:
        """``judge_model``, else the openai generator's ``model`` (a private server often serves one)."""
        try:
            key, base_url = connection(llm)
        except ValueError as exc:
            raise NoJudgeError(f"the OpenAI-compatible safety judge cannot be set up: {exc}") from exc
        if not key and base_url is None:
            raise NoJudgeError(
                f"the OpenAI safety judge needs an API key: set {KEY_ENV} or `api_key` under [llm], "
                "or `base_url` under [llm] for a private server, or choose another judge with `judge` under [llm]"
            )
        return cls(
            api_key=key,
            model=llm.judge_model or (llm.model if llm.generator == "openai" else "") or DEFAULT_MODEL,
            base_url=base_url,
            timeout=llm.judge_timeout_seconds,
            max_retries=llm.max_retries,
        )

    async def judge(self, node: CandidateNode) -> Verdict:
        client = self.client()
        started = time.perf_counter()

        async def attempt(timeout: float) -> Any:
            system, shape = request_shape(self.mode, "verdict", verdict_schema(), judge_system_prompt())
            completion = await client.chat.completions.create(
                model=self.model,
                messages=[{"role": "system", "content": system}, {"role": "user", "content": judge_user_message(node)}],
                max_completion_tokens=MAX_TOKENS,
                timeout=timeout,
                **shape,
            )
            ai_usage.record("judge", usage_of(getattr(completion, "usage", None)))
            return completion

        try:
            completion = await structured(self, attempt, timeout=self.timeout, max_retries=self.max_retries)
        except Exception as exc:  # mapped to the judge's own kinds; anything else is re-raised
            raise judge_failure(exc, failure_kind(exc), model=self.model) from exc
        self.last_latency_ms = round((time.perf_counter() - started) * 1000)
        self.last_usage = usage_of(getattr(completion, "usage", None))
        choice = completion.choices[0] if completion.choices else None
        message = choice.message if choice is not None else None
        if choice is None or message is None or message.refusal or choice.finish_reason in ("length", "content_filter"):
            raise JudgeDeclinedError(not_shown("The safety judge gave no verdict on the AI's step"))
        try:
            raw = json.loads(json_text(message.content or ""))
        except json.JSONDecodeError as exc:
            raise MalformedVerdictError(not_shown("The safety judge's answer was not valid JSON")) from exc
        try:
            return Verdict.parse(raw, model=self.model)
        except MalformedVerdictError as exc:
            raise MalformedVerdictError(not_shown(str(exc))) from exc
