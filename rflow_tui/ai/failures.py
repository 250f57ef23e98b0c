"""A model service's failure, named for the technician: one table for every generator and
one for every judge, whichever SDK made the call.

Each client module maps its SDK's exceptions to a kind (timeout, network, auth,
rate_limited, overloaded, server, unknown_model, status); these turn the kind into
the error the walk screen shows, with the wait a 429 or 529 asked for.
"""

from __future__ import annotations

from rflow_tui.ai.deadline import too_long
from rflow_tui.ai.errors import (
    AuthRefusedError,
    GenerationError,
    GenerationTimeoutError,
    JudgeAuthError,
    JudgeError,
    JudgeNetworkError,
    JudgeOverloadedError,
    JudgeRateLimitedError,
    JudgeRequestRejectedError,
    JudgeServerError,
    JudgeTimeoutError,
    JudgeUnknownModelError,
    NetworkError,
    OverloadedError,
    RateLimitedError,
    ServerError,
    UnknownModelError,
    not_shown,
)
from rflow_tui.ai.retry import server_wait

_WAITED = ("rate_limited", "overloaded")

_GENERATOR: dict[str, tuple[type[GenerationError], str]] = {
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


def generator_failure(exc: Exception, kind: str | None, *, model: str = "") -> Exception:
    """The GenerationError for a failed call of ``kind`` (None: not the SDK's; ``exc`` itself)."""
    if kind is None:
        return exc
    if kind == "unknown_model":
        return UnknownModelError(
            f"The AI service has no model named '{model}' (HTTP 404). Tell an admin (`model` under [llm]); "
            "escalate this ticket meanwhile."
        )
    if kind not in _GENERATOR:
        status = getattr(exc, "status_code", "?")
        return GenerationError(f"The AI service rejected the request (HTTP {status}). Escalate, and tell an admin.")
    cls, message = _GENERATOR[kind]
    wait = server_wait(exc) if kind in _WAITED else None
    if wait is not None:
        busy = "is rate-limiting this desk" if kind == "rate_limited" else "is overloaded"
        message = (
            f"The AI service {busy} and asks us to wait {wait:.0f} s before calling again. "
            "t works once the wait is over; e escalates and r resolves meanwhile."
        )
    return cls(message).waiting(wait)


_JUDGE: dict[str, tuple[type[JudgeError], str]] = {
    "timeout": (JudgeTimeoutError, "The safety judge took too long to check the AI's step"),
    "network": (JudgeNetworkError, "Cannot reach the safety judge (network down or blocked)"),
    "auth": (JudgeAuthError, "The safety judge's service refused our API key (tell an admin)"),
    "rate_limited": (JudgeRateLimitedError, "The desk has hit the safety judge's rate limit"),
    "overloaded": (JudgeOverloadedError, "The safety judge's service is overloaded right now"),
    "server": (JudgeServerError, "The safety judge's service had an internal error"),
}


def judge_failure(exc: Exception, kind: str | None, *, model: str = "") -> Exception:
    """The JudgeError for a failed call of ``kind`` (None: not the SDK's; ``exc`` itself)."""
    if kind is None:
        return exc
    if kind == "unknown_model":
        return JudgeUnknownModelError(
            not_shown(f"The safety judge's service has no model named '{model}' (tell an admin: `judge_model`)")
        )
    if kind not in _JUDGE:
        status = getattr(exc, "status_code", "?")
        return JudgeRequestRejectedError(not_shown(f"The safety judge's service rejected the request (HTTP {status})"))
    cls, cause = _JUDGE[kind]
    wait = server_wait(exc) if kind in _WAITED else None
    if wait is not None:
        cause = f"{cause}; it asks us to wait {wait:.0f} s before calling again"
    return cls(not_shown(cause)).waiting(wait)
