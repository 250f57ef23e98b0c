"""What the Anthropic generator and judge share: the SDK client, retries inside the
step's deadline, and how an SDK failure is named.

``anthropic`` is imported on first use, never at app start (it costs over a second).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from email.utils import parsedate_to_datetime
from random import random
from typing import Any, TypeVar

from rflow_tui.ai.deadline import capped, remaining, too_long

T = TypeVar("T")


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
                if server_wait(exc) is not None:
                    raise  # the service asked for longer than the step has left: the caller names that wait
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


def server_wait(exc: Exception) -> float | None:
    """The seconds a refused call's ``retry-after`` asks for (None: it asked for nothing)."""
    response = getattr(exc, "response", None)
    asked = retry_after_seconds(response.headers) if response is not None else None
    return asked if asked is not None and asked > 0 else None


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
