"""Retries inside the step's deadline, and what a refused call asked for: shared by every
generator and judge that calls a model service through an SDK (Anthropic, OpenAI-compatible).

Nothing here imports an SDK: each client module says which of its exceptions are a
network failure and which carry an HTTP status (``status_retry_wait``), and hands its
``retry_wait`` to ``within_deadline``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from email.utils import parsedate_to_datetime
from random import random
from typing import Any, TypeVar

from rflow_tui.ai.deadline import MIN_REQUEST_SECONDS, can_start, capped, remaining, too_long

T = TypeVar("T")
RetryWait = Callable[[Exception, int], "float | None"]

RETRIED_STATUSES = (408, 409, 429)
FIRST_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 8.0


async def within_deadline(
    request: Callable[[float], Awaitable[T]], *, timeout: float, max_retries: int, retry_wait: RetryWait
) -> T:
    """``request(timeout)``, retried up to ``max_retries`` times when ``retry_wait`` says a retry
    may help. Each attempt's timeout and each wait (the server's retry-after too) is capped
    by what is left of the step (``ai.deadline``): a wait that would pass the deadline
    ends the step now, with the timeout message, instead of sleeping through it, and no
    request is sent with too little of the step left to answer in."""
    attempt = 0
    while True:
        if not can_start():
            raise too_long()  # a request sent now could not come back in time
        try:
            return await request(capped(timeout))
        except Exception as exc:
            wait = retry_wait(exc, attempt) if attempt < max_retries else None
            if wait is None:
                raise
            left = remaining()
            if left is not None and wait + MIN_REQUEST_SECONDS >= left:
                if server_wait(exc) is not None:
                    raise  # the service asked for longer than the step has left: the caller names that wait
                raise too_long() from exc
            await asyncio.sleep(wait)
            attempt += 1


def backoff(attempt: int) -> float:
    """A jittered exponential backoff for the ``attempt``-th retry."""
    return min(FIRST_BACKOFF_SECONDS * 2.0**attempt, MAX_BACKOFF_SECONDS) * (1 - 0.25 * random())


def status_retry_wait(
    exc: Exception, attempt: int, *, connection_error: type[Exception], status_error: type[Exception]
) -> float | None:
    """Seconds to wait before retrying after ``exc`` (the server's retry-after when it
    sends one, else a jittered backoff), or None when a retry cannot help.

    ``connection_error`` and ``status_error`` are the SDK's base classes for "no answer"
    (network down, the attempt's timeout) and "an HTTP error status"; both SDKs carry the
    response on the latter as ``exc.response``.
    """
    if isinstance(exc, connection_error):
        return backoff(attempt)
    if not isinstance(exc, status_error):
        return None
    response: Any = getattr(exc, "response", None)
    if response is None:
        return None
    headers = response.headers
    advice = headers.get("x-should-retry")
    status: int = response.status_code
    if advice == "false" or (advice != "true" and status not in RETRIED_STATUSES and status < 500):
        return None
    asked = retry_after_seconds(headers)
    return asked if asked is not None and asked > 0 else backoff(attempt)


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


def kind_of(exc: Exception, kinds: Sequence[tuple[type[Exception], str]]) -> str | None:
    """The kind of the first class in ``kinds`` that ``exc`` is an instance of (subclasses first)."""
    return next((kind for cls, kind in kinds if isinstance(exc, cls)), None)
