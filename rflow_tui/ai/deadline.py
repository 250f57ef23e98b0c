"""One deadline per AI step: every attempt, every retry wait and the judge share it.

A tech waits at the screen, so what bounds the wait is the step, not each request:
``step_deadline`` is entered once around the whole step (``ai.generate``) and
enforced there with ``asyncio.timeout``, whatever the generator does. Generators and
judges that make requests read ``remaining()`` to cap each request's own timeout and
each retry wait (a server's retry-after included), so they give up early instead of
sleeping past it. Past the deadline the tech gets the timeout message.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar

from rflow_tui.ai.errors import GenerationTimeoutError

DEFAULT_STEP_SECONDS = 20.0
_ENDS_AT: ContextVar[float | None] = ContextVar("rflow_step_ends_at", default=None)


def remaining() -> float | None:
    """Seconds left of the current step's deadline (never below 0), or None outside a step."""
    ends_at = _ENDS_AT.get()
    if ends_at is None:
        return None
    return max(0.0, ends_at - asyncio.get_running_loop().time())


def capped(seconds: float) -> float:
    """``seconds``, or what is left of the step if that is less."""
    left = remaining()
    return seconds if left is None else min(seconds, left)


MIN_REQUEST_SECONDS = 0.5
"""Less than this left of a step, no new request is sent: no model answers that fast."""


def can_start(expected_seconds: float | None = None) -> bool:
    """Whether a request expected to take ``expected_seconds`` (None: unknown) can still
    finish inside the current step; outside a step, always."""
    left = remaining()
    return left is None or left >= max(MIN_REQUEST_SECONDS, expected_seconds or 0.0)


def too_long() -> GenerationTimeoutError:
    return GenerationTimeoutError("The AI took too long to answer. Try again, or escalate the ticket.")


@asynccontextmanager
async def step_deadline(seconds: float | None) -> AsyncIterator[None]:
    """Run the block within ``seconds`` (None: no limit); past it, GenerationTimeoutError.

    Nested inside another step, the earlier of the two deadlines holds.
    """
    if seconds is None:
        yield
        return
    ends_at = asyncio.get_running_loop().time() + seconds
    outer = _ENDS_AT.get()
    if outer is not None:
        ends_at = min(ends_at, outer)
    token = _ENDS_AT.set(ends_at)
    try:
        async with asyncio.timeout_at(ends_at) as scope:
            yield
    except TimeoutError as exc:
        if scope.expired():
            raise too_long() from exc
        raise
    finally:
        _ENDS_AT.reset(token)
