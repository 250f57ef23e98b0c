"""The real node generator: Anthropic's Messages API with a JSON-schema output format.

``anthropic`` is imported on first use, never at app start (it costs over a
second). Timeouts and retries are set for a technician waiting at a screen, and
every failure reaches the caller as its own GenerationError with a message a
technician understands.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, TypeVar

from rflow_tui.ai import usage as ai_usage
from rflow_tui.ai.anthropic_client import cached_text, failure_kind, message_text, sdk_client, within_deadline
from rflow_tui.ai.base import NodeContext, PartialListener
from rflow_tui.ai.contract import NODE_SCHEMA
from rflow_tui.ai.errors import MalformedNodeError, MissingKeyError, RefusalError, TruncatedError
from rflow_tui.ai.failures import generator_failure
from rflow_tui.ai.model_call import ModelCaller

T = TypeVar("T")

DEFAULT_MODEL = "claude-haiku-5-5"  # fast and current in the SDK's model list (anthropic 2.13)
MAX_TOKENS = 1024


class AnthropicGenerator(ModelCaller):
    name = "anthropic"

    default_model = DEFAULT_MODEL
    default_timeout = 20.0
    sdk_client = staticmethod(sdk_client)

    @classmethod
    def from_settings(cls, llm: Any) -> AnthropicGenerator:
        api_key = llm.api_key or os.environ.get("ANTHROPIC_API_KEY", "")
        if not api_key:
            raise MissingKeyError("no Anthropic API key: set ANTHROPIC_API_KEY or `api_key` under [llm] in the config")
        return cls(
            api_key=api_key,
            model=llm.model or DEFAULT_MODEL,
            base_url=llm.base_url or os.environ.get("ANTHROPIC_BASE_URL") or None,
            timeout=llm.timeout_seconds,
            max_retries=llm.max_retries,
        )

    async def generate(self, context: NodeContext) -> dict[str, Any]:
        return await self.stream(context, lambda partial: None)

    async def stream(self, context: NodeContext, on_partial: PartialListener) -> dict[str, Any]:
        """The node through ``messages.stream``: ``on_partial`` gets the node as parsed so far
        (the SDK's partial JSON) after every chunk, and ``{}`` when a retry starts over."""
        from rflow_tui.ai.prompt import system_prompt, user_blocks

        client = self.client()
        started = time.perf_counter()
        ticket, walk = user_blocks(context)

        async def attempt(timeout: float) -> Any:
            on_partial({})
            async with client.messages.stream(
                model=self.model,
                max_tokens=MAX_TOKENS,
                # the system prompt and schema, then the ticket: the same in every step of a walk
                system=cached_text(system_prompt()),
                messages=[{"role": "user", "content": [*cached_text(ticket), {"type": "text", "text": walk}]}],
                output_config={"format": {"type": "json_schema", "schema": NODE_SCHEMA}},
                timeout=timeout,
            ) as stream:
                try:
                    async for event in stream:
                        partial = partial_node(event)
                        if partial is not None:
                            on_partial(partial)
                    message = await stream.get_final_message()
                except BaseException:  # cancelled or failed mid-stream: what it read so far was billed
                    ai_usage.record("generator", ai_usage.anthropic_usage(_snapshot_usage(stream)))
                    raise
                ai_usage.record("generator", ai_usage.anthropic_usage(message.usage))
                return message

        try:
            message = await within_deadline(attempt, timeout=self.timeout, max_retries=self.max_retries)
        except Exception as exc:  # mapped to our own kinds; anything else is re-raised
            raise _translate(exc) from exc
        self.last_latency_ms = round((time.perf_counter() - started) * 1000)
        self.last_usage = ai_usage.anthropic_usage(getattr(message, "usage", None))
        if message.stop_reason == "refusal":
            raise RefusalError(
                "The AI declined to suggest a step for this ticket. t asks it again; e escalates, r resolves."
            )
        if message.stop_reason == "max_tokens":
            raise TruncatedError("The AI's answer was cut off before it was complete. Try again, or escalate.")
        text = message_text(message)
        if not text.strip():
            raise MalformedNodeError("the AI's answer was empty (no text in it)")
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MalformedNodeError("the AI returned something that is not a node (malformed JSON)") from exc
        if not isinstance(raw, dict):
            raise MalformedNodeError("the node is not a JSON object")  # as validate says it
        return raw


def partial_node(event: Any) -> dict[str, Any] | None:
    """The node so far from a stream's text event (jiter's partial mode, via the SDK), else None."""
    if getattr(event, "type", "") != "text":
        return None
    try:
        snapshot = event.parsed_snapshot()
    except ValueError:  # not yet an object (e.g. only whitespace so far)
        return None
    return snapshot if isinstance(snapshot, dict) else None


def _snapshot_usage(stream: Any) -> Any:
    """The usage of a stream so far (from its ``message_start``), None before it started."""
    try:
        return stream.current_message_snapshot.usage
    except Exception:  # no event read yet
        return None


def _translate(exc: Exception) -> Exception:
    return generator_failure(exc, failure_kind(exc))
