"""The real node generator: Anthropic's Messages API with a JSON-schema output format.

``anthropic`` is imported on first use, never at app start (it costs over a
second). Timeouts and retries are set for a technician waiting at a screen, and
every failure reaches the caller as its own GenerationError with a message a
technician understands.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from email.utils import parsedate_to_datetime
from random import random
from typing import Any, TypeVar

from rflow_tui.ai.base import (
    GenerationError,
    GenerationTimeoutError,
    MalformedNodeError,
    NodeContext,
    NoGeneratorError,
    PartialListener,
)
from rflow_tui.ai.deadline import capped, remaining, too_long
from rflow_tui.ai.validate import MAX_ID, MAX_LABEL, MAX_TEXT
from rflow_tui.domain.enums import AI_NODE_TYPES

T = TypeVar("T")

DEFAULT_MODEL = "claude-haiku-5-5"  # fast and current in the SDK's model list (anthropic 2.13)
MAX_TOKENS = 1024

NODE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": f"short slug unique in this walk, at most {MAX_ID} characters"},
        "type": {"type": "string", "enum": [node_type.value for node_type in AI_NODE_TYPES]},
        "text": {"type": "string", "description": f"plain text shown to the technician, at most {MAX_TEXT} characters"},
        "yes_label": {
            "type": "string",
            "description": f"first button text for a question (at most {MAX_LABEL} characters); empty otherwise",
        },
        "no_label": {
            "type": "string",
            "description": f"second button text for a question (at most {MAX_LABEL} characters); empty otherwise",
        },
    },
    "required": ["id", "type", "text", "yes_label", "no_label"],
    "additionalProperties": False,
}


class MissingKeyError(NoGeneratorError):
    kind = "no_key"


class AuthRefusedError(GenerationError):
    kind = "auth"


class NetworkError(GenerationError):
    kind = "network"


class RateLimitedError(GenerationError):
    kind = "rate_limited"


class OverloadedError(GenerationError):
    kind = "overloaded"


class ServerError(GenerationError):
    kind = "server"


class RefusalError(GenerationError):
    kind = "refusal"


class TruncatedError(GenerationError):
    kind = "max_tokens"


class AnthropicGenerator:
    name = "anthropic"

    def __init__(
        self,
        *,
        api_key: str,
        model: str = DEFAULT_MODEL,
        base_url: str | None = None,
        timeout: float = 20.0,
        max_retries: int = 1,
        client: Any = None,
    ) -> None:
        self.api_key = api_key
        self.model = model or DEFAULT_MODEL
        self.base_url = base_url or None
        self.timeout = timeout
        self.max_retries = max_retries
        self._client = client
        self.last_usage: dict[str, int] | None = None
        self.last_latency_ms: int | None = None

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

    def client(self) -> Any:
        if self._client is None:
            self._client = sdk_client(api_key=self.api_key, base_url=self.base_url, timeout=self.timeout)
        return self._client

    async def generate(self, context: NodeContext) -> dict[str, Any]:
        return await self.stream(context, lambda partial: None)

    async def stream(self, context: NodeContext, on_partial: PartialListener) -> dict[str, Any]:
        """The node through ``messages.stream``: ``on_partial`` gets the node as parsed so far
        (the SDK's partial JSON) after every chunk, and ``{}`` when a retry starts over."""
        from rflow_tui.ai.prompt import system_prompt, user_message

        client = self.client()
        started = time.perf_counter()

        async def attempt(timeout: float) -> Any:
            on_partial({})
            async with client.messages.stream(
                model=self.model,
                max_tokens=MAX_TOKENS,
                system=system_prompt(),
                messages=[{"role": "user", "content": user_message(context)}],
                output_config={"format": {"type": "json_schema", "schema": NODE_SCHEMA}},
                timeout=timeout,
            ) as stream:
                async for event in stream:
                    partial = partial_node(event)
                    if partial is not None:
                        on_partial(partial)
                return await stream.get_final_message()

        try:
            message = await within_deadline(attempt, timeout=self.timeout, max_retries=self.max_retries)
        except Exception as exc:  # mapped to our own kinds; anything else is re-raised
            raise _translate(exc) from exc
        self.last_latency_ms = round((time.perf_counter() - started) * 1000)
        usage = getattr(message, "usage", None)
        if usage is not None:
            self.last_usage = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
        if message.stop_reason == "refusal":
            raise RefusalError("The AI declined to suggest a step for this ticket. Escalate it or resolve it by hand.")
        if message.stop_reason == "max_tokens":
            raise TruncatedError("The AI's answer was cut off before it was complete. Try again, or escalate.")
        text = message_text(message)
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


def sdk_client(*, api_key: str, base_url: str | None, timeout: float) -> Any:
    """An AsyncAnthropic client; the SDK is imported here, on first use, never at app start.

    The SDK's own retries are off: it would obey any retry-after (90 s and more) while
    a tech waits. ``within_deadline`` retries instead, inside the step's deadline.
    """
    from anthropic import AsyncAnthropic

    return AsyncAnthropic(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)


RETRIED_STATUSES = (408, 409, 429)
FIRST_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 8.0


async def within_deadline(request: Callable[[float], Awaitable[T]], *, timeout: float, max_retries: int) -> T:
    """``request(timeout)``, retried up to ``max_retries`` times when the service says a retry
    may help. Each attempt's timeout and each wait (the server's retry-after too) is capped
    by what is left of the step (``ai.deadline``): a wait that would pass the deadline
    ends the step now, with the timeout message, instead of sleeping through it."""
    attempt = 0
    while True:
        try:
            return await request(max(0.01, capped(timeout)))
        except Exception as exc:
            wait = retry_wait(exc, attempt) if attempt < max_retries else None
            if wait is None:
                raise
            left = remaining()
            if left is not None and wait >= left:
                raise too_long() from exc
            await asyncio.sleep(wait)
            attempt += 1


def retry_wait(exc: Exception, attempt: int) -> float | None:
    """Seconds to wait before retrying after ``exc`` (the server's retry-after when it
    sends one, else a jittered backoff), or None when a retry cannot help."""
    import anthropic

    backoff = min(FIRST_BACKOFF_SECONDS * 2.0**attempt, MAX_BACKOFF_SECONDS) * (1 - 0.25 * random())
    if isinstance(exc, anthropic.APIConnectionError):  # network down, or the attempt's timeout
        return backoff
    if not isinstance(exc, anthropic.APIStatusError):
        return None
    headers = exc.response.headers
    advice = headers.get("x-should-retry")
    status: int = exc.response.status_code
    if advice == "false" or (advice != "true" and status not in RETRIED_STATUSES and status < 500):
        return None
    asked = retry_after_seconds(headers)
    return asked if asked is not None and asked > 0 else backoff


def retry_after_seconds(headers: Any) -> float | None:
    """What ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date) asks for, if anything."""
    try:
        return float(headers["retry-after-ms"]) / 1000
    except (KeyError, TypeError, ValueError):
        pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError):
        return None


def message_text(message: Any) -> str:
    return "".join(block.text for block in message.content if getattr(block, "type", "") == "text")


def failure_kind(exc: Exception) -> str | None:
    """How an SDK call failed (timeout, network, auth, rate_limited, overloaded, server,
    status), or None when the exception is not the SDK's. Subclasses come first."""
    import anthropic

    kinds = (
        (anthropic.APITimeoutError, "timeout"),
        (anthropic.APIConnectionError, "network"),
        (anthropic.AuthenticationError, "auth"),
        (anthropic.RateLimitError, "rate_limited"),
        (anthropic.OverloadedError, "overloaded"),
        (anthropic.InternalServerError, "server"),
        (anthropic.APIStatusError, "status"),
    )
    return next((kind for cls, kind in kinds if isinstance(exc, cls)), None)


_FAILURES: dict[str, tuple[type[GenerationError], str]] = {
    "timeout": (GenerationTimeoutError, str(too_long())),
    "network": (NetworkError, "Cannot reach the AI service (network down or blocked). Try again, or escalate."),
    "auth": (AuthRefusedError, "The AI service refused our API key. Tell an admin; escalate this ticket meanwhile."),
    "rate_limited": (
        RateLimitedError,
        "The desk has hit the AI's rate limit. Wait a minute and try again, or escalate.",
    ),
    "overloaded": (OverloadedError, "The AI service is overloaded right now. Try again in a minute, or escalate."),
    "server": (ServerError, "The AI service had an internal error. Try again, or escalate."),
}


def _translate(exc: Exception) -> Exception:
    kind = failure_kind(exc)
    if kind is None:
        return exc
    if kind == "status":
        status = getattr(exc, "status_code", "?")
        return GenerationError(f"The AI service rejected the request (HTTP {status}). Escalate, and tell an admin.")
    cls, message = _FAILURES[kind]
    return cls(message)
