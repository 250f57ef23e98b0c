"""The node generator for private and OpenAI-compatible models: Chat Completions through
the ``openai`` SDK, with the node's JSON schema as a strict ``response_format``.

``base_url`` points it at Ollama, vLLM, llama.cpp's server, LM Studio or Azure OpenAI,
so a desk whose tickets may not go to a public API keeps them on its own machines.
Everything around the call is the Anthropic generator's: the answer streamed to
``on_partial``, retries inside the step's deadline, each failure its own error. A
server that refuses ``json_schema`` is asked once more with the schema in the prompt,
and from then on (``openai_client.PROMPT``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from rflow_tui.ai import usage as ai_usage
from rflow_tui.ai.base import NodeContext, PartialListener
from rflow_tui.ai.contract import NODE_SCHEMA
from rflow_tui.ai.errors import (
    ContentFilteredError,
    MalformedNodeError,
    MissingKeyError,
    NoGeneratorError,
    RefusalError,
    TruncatedError,
)
from rflow_tui.ai.failures import generator_failure
from rflow_tui.ai.model_call import ModelCaller
from rflow_tui.ai.openai_client import (
    JSON_SCHEMA,
    KEY_ENV,
    connection,
    failure_kind,
    json_text,
    partial_object,
    request_shape,
    sdk_client,
    structured,
    usage_of,
)

DEFAULT_MODEL = "gpt-5.4-mini"  # OpenAI's own API; a private server needs `model` under [llm]
MAX_TOKENS = 2048  # a reasoning model's thinking counts too


@dataclass
class Answer:
    """A streamed completion put back together: the text, a refusal, why it stopped, the usage."""

    parts: list[str] = field(default_factory=list)
    refusal: str = ""
    finish_reason: str | None = None
    usage: Any = None

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def add(self, chunk: Any) -> bool:
        """Take one chunk; True when it added text."""
        if getattr(chunk, "usage", None) is not None:
            self.usage = chunk.usage
        added = False
        for choice in chunk.choices or ():
            delta = choice.delta
            if delta is not None and delta.content:
                self.parts.append(delta.content)
                added = True
            if delta is not None and delta.refusal:
                self.refusal += delta.refusal
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
        return added


class OpenAIGenerator(ModelCaller):
    name = "openai"

    default_model = DEFAULT_MODEL
    default_timeout = 20.0
    sdk_client = staticmethod(sdk_client)
    mode = JSON_SCHEMA  # until a server refuses it (then per instance)

    @classmethod
    def from_settings(cls, llm: Any) -> OpenAIGenerator:
        try:
            key, base_url = connection(llm)
        except ValueError as exc:
            raise NoGeneratorError(str(exc)) from exc
        if not key and base_url is None:
            raise MissingKeyError(
                f"no OpenAI API key: set {KEY_ENV} or `api_key` under [llm]; for a private server "
                "(Ollama, vLLM, llama.cpp, LM Studio) set `base_url` under [llm] instead"
            )
        return cls(
            api_key=key,
            model=llm.model or DEFAULT_MODEL,
            base_url=base_url,
            timeout=llm.timeout_seconds,
            max_retries=llm.max_retries,
        )

    async def generate(self, context: NodeContext) -> dict[str, Any]:
        return await self.stream(context, lambda partial: None)

    async def stream(self, context: NodeContext, on_partial: PartialListener) -> dict[str, Any]:
        """The node through a streamed completion: ``on_partial`` gets the node as parsed so
        far after every chunk that adds text, and ``{}`` when a retry starts over."""
        from rflow_tui.ai.prompt import system_prompt, user_message

        client = self.client()
        started = time.perf_counter()

        async def attempt(timeout: float) -> Answer:
            on_partial({})
            system, shape = request_shape(self.mode, "node", NODE_SCHEMA, system_prompt())
            if self.mode == JSON_SCHEMA:  # a server that refuses the schema may not know this either
                shape["stream_options"] = {"include_usage": True}
            stream = await client.chat.completions.create(
                model=self.model,
                messages=[{"role": "system", "content": system}, {"role": "user", "content": user_message(context)}],
                max_completion_tokens=MAX_TOKENS,
                stream=True,
                timeout=timeout,
                **shape,
            )
            answer = Answer()
            try:
                async with stream:
                    async for chunk in stream:
                        if answer.add(chunk):
                            partial = partial_object(answer.text)
                            if partial is not None:
                                on_partial(partial)
            finally:  # a stream cut off counts what its server reported (usage comes last: often nothing)
                ai_usage.record("generator", usage_of(answer.usage))
            return answer

        try:
            answer = await structured(self, attempt, timeout=self.timeout, max_retries=self.max_retries)
        except Exception as exc:  # mapped to our own kinds; anything else is re-raised
            raise generator_failure(exc, failure_kind(exc), model=self.model) from exc
        self.last_latency_ms = round((time.perf_counter() - started) * 1000)
        self.last_usage = usage_of(answer.usage)
        return node_of(answer)


def node_of(answer: Answer) -> dict[str, Any]:
    """The raw node in a whole answer, or the error that names what it is instead."""
    if answer.finish_reason == "content_filter":
        raise ContentFilteredError(
            "The AI service's content filter stopped this step. t asks it again; e escalates, r resolves."
        )
    if answer.refusal:
        raise RefusalError(
            "The AI declined to suggest a step for this ticket. t asks it again; e escalates, r resolves."
        )
    if answer.finish_reason == "length":
        raise TruncatedError("The AI's answer was cut off before it was complete. Try again, or escalate.")
    text = answer.text
    if not text.strip():
        raise MalformedNodeError("the AI's answer was empty (no text in it)")
    try:
        raw = json.loads(json_text(text))
    except json.JSONDecodeError as exc:
        raise MalformedNodeError("the AI returned something that is not a node (malformed JSON)") from exc
    if not isinstance(raw, dict):
        raise MalformedNodeError("the node is not a JSON object")  # as validate says it
    return raw
