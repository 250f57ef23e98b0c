"""Every way an AI step can fail, each its own type with a message written for the technician.

Generation and judging fail in the same family (``GenerationError``): the walk screen
shows ``str(exc)`` and offers Retry, escalate or resolve by hand.
"""

from __future__ import annotations


class GenerationError(Exception):
    """A node could not be produced. ``str(exc)`` is written for the technician.

    ``retry_after``: the seconds the service asked us to wait before calling again (a 429
    or 529 with ``retry-after``), so nobody spends a call that is sure to be refused.
    """

    kind = "error"
    retry_after: float | None = None

    def waiting(self, seconds: float | None) -> GenerationError:
        """This error, carrying the wait the service asked for."""
        self.retry_after = seconds
        return self


class NoGeneratorError(GenerationError):
    kind = "no_generator"


class GenerationCancelledError(GenerationError):
    """The tech stopped the generation (Esc); the answer they gave stays saved."""

    kind = "cancelled"


class GenerationTimeoutError(GenerationError):
    """The step's deadline passed (``ai.deadline``) before a node was ready."""

    kind = "timeout"


class UnsafeNodeError(GenerationError):
    """The last try broke a safety rule (after one retry); nothing is shown."""

    kind = "unsafe"


class UnusableOutputError(GenerationError):
    """The last try was not a usable node (after one retry); nothing is shown."""

    kind = "malformed"


class InvalidNodeError(GenerationError):
    """One node was refused: ``MalformedNodeError`` or ``SafetyRefusal`` say which way."""

    kind = "invalid"
    rejection_kind = "malformed"


class MalformedNodeError(InvalidNodeError):
    """The model's output is not a usable node: bad JSON, schema, lengths or labels."""


class SafetyRefusal(InvalidNodeError):
    """A well-formed node that one of the safety layers refused.

    Carries the rules broken as (id, description) pairs; the message names them and
    never quotes the node, so it is safe on screen, in a prompt and in a log.
    """

    rejection_kind = "unsafe"
    refused_by = "the safety rules"

    def __init__(self, rules: list[tuple[str, str]]) -> None:
        self.rules = list(rules)
        self.rule_ids = [rule_id for rule_id, _ in self.rules]
        named = "; ".join(f"{description} (rule {rule_id})" for rule_id, description in self.rules)
        super().__init__(f"{self.refused_by} refused it: {named}")


# --- a model service's failures (any generator that calls one) -------------------------


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


class UnknownModelError(GenerationError):
    """The service has no model by the configured name (a private server's 404)."""

    kind = "unknown_model"


class RefusalError(GenerationError):
    kind = "refusal"


class ContentFilteredError(RefusalError):
    """The service's content filter (Azure's, say) stopped the answer."""

    kind = "content_filter"


class TruncatedError(GenerationError):
    kind = "max_tokens"


# --- failures: each its own type ------------------------------------------------------

_NOT_SHOWN = "so the AI's step is not shown. Try again, or escalate the ticket."


class JudgeError(GenerationError):
    """No verdict: the node is not shown. ``str(exc)`` is written for the technician."""

    kind = "judge"


class NoJudgeError(JudgeError):
    """The configured judge cannot be built (unknown name, no API key, cannot load)."""

    kind = "judge_unavailable"


class JudgeTimeoutError(JudgeError):
    kind = "judge_timeout"


class JudgeNetworkError(JudgeError):
    kind = "judge_network"


class JudgeAuthError(JudgeError):
    kind = "judge_auth"


class JudgeRateLimitedError(JudgeError):
    kind = "judge_rate_limited"


class JudgeOverloadedError(JudgeError):
    kind = "judge_overloaded"


class JudgeServerError(JudgeError):
    kind = "judge_server"


class JudgeUnknownModelError(JudgeError):
    """The judge's service has no model by the configured name."""

    kind = "judge_unknown_model"


class JudgeRequestRejectedError(JudgeError):
    """The service refused the request itself (an HTTP status we have no better name for)."""

    kind = "judge_request_rejected"


class JudgeDeclinedError(JudgeError):
    """The judge model declined to answer, or its answer was cut off."""

    kind = "judge_declined"


class MalformedVerdictError(JudgeError):
    kind = "judge_malformed"


class VerdictNotInRecordingError(JudgeError):
    kind = "judge_not_in_recording"


def not_shown(cause: str) -> str:
    """The technician's message for a judge failure: the cause, then what happens and what to do."""
    return f"{cause}, {_NOT_SHOWN}"
