"""What the Anthropic generator and judge share: the SDK client, which of its failures a
retry may help (``ai.retry`` retries inside the step's deadline), and how a failure is named.

``anthropic`` is imported on first use, never at app start (it costs over a second).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from rflow_tui.ai import retry

T = TypeVar("T")


def sdk_client(*, api_key: str, base_url: str | None, timeout: float) -> Any:
    """An AsyncAnthropic client; the SDK is imported here, on first use, never at app start.

    The SDK's own retries are off: it would obey any retry-after (90 s and more) while
    a tech waits. ``within_deadline`` retries instead, inside the step's deadline.
    """
    from anthropic import AsyncAnthropic

    return AsyncAnthropic(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)


async def within_deadline(request: Callable[[float], Awaitable[T]], *, timeout: float, max_retries: int) -> T:
    """``ai.retry.within_deadline`` with the Anthropic SDK's idea of a retryable failure."""
    return await retry.within_deadline(request, timeout=timeout, max_retries=max_retries, retry_wait=retry_wait)


def retry_wait(exc: Exception, attempt: int) -> float | None:
    """Seconds to wait before retrying after ``exc``, or None when a retry cannot help."""
    import anthropic

    return retry.status_retry_wait(
        exc, attempt, connection_error=anthropic.APIConnectionError, status_error=anthropic.APIStatusError
    )


CACHED = {"type": "ephemeral"}
"""Marks the end of a prompt prefix the service may cache (``cache_control``). Below the
model's minimum cacheable length (1,024 to 4,096 tokens by model, in Anthropic's prompt
caching guide) the mark is ignored and the prompt billed in full, so it is always set."""


def cached_text(text: str) -> list[dict[str, Any]]:
    """``text`` as one content block whose end is a cache breakpoint."""
    return [{"type": "text", "text": text, "cache_control": CACHED}]


def message_text(message: Any) -> str:
    return "".join(block.text for block in message.content if getattr(block, "type", "") == "text")


def failure_kind(exc: Exception) -> str | None:
    """How an SDK call failed (timeout, network, auth, rate_limited, overloaded, server,
    status), or None when the exception is not the SDK's. Subclasses come first."""
    import anthropic

    return retry.kind_of(
        exc,
        (
            (anthropic.APITimeoutError, "timeout"),
            (anthropic.APIConnectionError, "network"),
            (anthropic.AuthenticationError, "auth"),
            (anthropic.RateLimitError, "rate_limited"),
            (anthropic.OverloadedError, "overloaded"),
            (anthropic.InternalServerError, "server"),
            (anthropic.APIStatusError, "status"),
        ),
    )
