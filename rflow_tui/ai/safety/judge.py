"""Layer 2 of the safety guard: an independent model judge for live AI nodes.

The judge sees a ``CandidateNode`` (the step's text and its answer labels) and the
rule catalogue, and nothing else: the type has no room for the ticket, the problem
text, the category or the notes, so an injection written into a ticket cannot reach
it. It answers a ``Verdict`` (safe or unsafe, the rule, a reason).

Judges are pluggable like generators: built-ins ``anthropic`` and ``fixture``, or a
name registered under the ``rflow.judges`` entry-point group (a callable taking the
``[llm]`` settings and returning an object with ``async judge(node) -> Verdict``).
``[llm] judge = "off"`` runs the rules alone; ``"auto"`` (the default) picks the
fixture judge for the fixture generator and the Anthropic judge otherwise.

Every way a judge can fail is its own ``JudgeError`` (a ``GenerationError``): the
node is then not shown, and the technician may retry, escalate or resolve.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from rflow_tui.ai.base import GenerationError, SafetyRefusal, load_target, registered
from rflow_tui.domain.enums import NodeType
from rflow_tui.text import clean

JUDGE_AUTO = "auto"
JUDGE_OFF = "off"
ENTRY_POINT_GROUP = "rflow.judges"
_BUILTIN: dict[str, str] = {
    "anthropic": "rflow_tui.ai.safety.anthropic_judge:AnthropicJudge.from_settings",
    "fixture": "rflow_tui.ai.fixture:ReplayJudge.from_settings",
}
OTHER_RULE = "other"  # an unsafe step no catalogued rule names
OTHER_DESCRIPTION = "another instruction an L1 technician must never be given"
MAX_REASON = 500


@dataclass(frozen=True)
class CandidateNode:
    """All the judge may see of a step: its text and its answer labels."""

    text: str
    labels: tuple[str, ...] = ()

    @classmethod
    def of(cls, node: dict[str, Any]) -> CandidateNode:
        """From a validated node: a question's two labels, no labels for anything else."""
        labels = (node["yes_label"], node["no_label"]) if node.get("type") == NodeType.QUESTION else ()
        return cls(text=node["text"], labels=tuple(labels))

    def key(self) -> str:
        """What a recorded verdict is replayed by: the content, spacing folded (never the ticket)."""
        material = [" ".join(self.text.split()), [" ".join(label.split()) for label in self.labels]]
        return hashlib.sha256(json.dumps(material, ensure_ascii=False).encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class Verdict:
    verdict: str  # "safe" | "unsafe"
    rule: str = ""  # a rule id (or "other") when unsafe; "" when safe
    reason: str = ""
    model: str = ""  # who judged, as recorded

    @property
    def safe(self) -> bool:
        return self.verdict == "safe"

    @classmethod
    def parse(cls, raw: Any, *, model: str = "") -> Verdict:
        """A verdict from a judge's JSON, or MalformedVerdictError saying what is wrong."""
        if not isinstance(raw, dict):
            raise MalformedVerdictError("The safety judge's answer is not a JSON object")
        verdict, rule, reason = raw.get("verdict"), raw.get("rule", ""), raw.get("reason", "")
        if verdict not in ("safe", "unsafe"):
            raise MalformedVerdictError("The safety judge's verdict is neither 'safe' nor 'unsafe'")
        if not isinstance(rule, str) or not isinstance(reason, str):
            raise MalformedVerdictError("The safety judge's rule and reason are not text")
        if verdict == "unsafe" and rule not in rule_descriptions():
            raise MalformedVerdictError("The safety judge called the step unsafe without naming a known rule")
        reason = clean(reason, single_line=True)[:MAX_REASON]
        return cls(verdict, rule if verdict == "unsafe" else "", reason, model or str(raw.get("model") or ""))

    def record(self) -> dict[str, str]:
        return {"verdict": self.verdict, "rule": self.rule, "reason": self.reason, "model": self.model}


@runtime_checkable
class NodeJudge(Protocol):
    name: str

    async def judge(self, node: CandidateNode) -> Verdict:
        """Judge one candidate step against the rule catalogue."""
        ...


def rule_descriptions() -> dict[str, str]:
    """Rule id -> description: the catalogue the judge is given, plus the catch-all ``other``."""
    from rflow_tui.ai.safety import rule_catalogue

    return {**{rule.id: rule.description for rule in rule_catalogue()}, OTHER_RULE: OTHER_DESCRIPTION}


class JudgeRefusal(SafetyRefusal):
    """The judge called a node the rules let through unsafe. Names the rule; never quotes."""

    refused_by = "the safety judge"

    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict
        super().__init__([(verdict.rule, rule_descriptions().get(verdict.rule, OTHER_DESCRIPTION))])


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


class UnavailableJudge:
    """Stands in for a judge that could not be built: every step is refused, never shown unjudged."""

    name = "unavailable"

    def __init__(self, why: str | None) -> None:
        self.why = why or "it could not be set up"

    async def judge(self, node: CandidateNode) -> Verdict:
        raise NoJudgeError(not_shown(f"The safety judge is unavailable ({self.why})"))


# --- the registry ----------------------------------------------------------------------


def available_judges() -> dict[str, str]:
    """Built-in judge names plus third-party ones from the ``rflow.judges`` entry points."""
    return registered(_BUILTIN, ENTRY_POINT_GROUP)


def setting_values() -> list[str]:
    """Every value ``[llm] judge`` accepts."""
    return [JUDGE_AUTO, JUDGE_OFF, *sorted(available_judges())]


def resolved_judge_name(llm: Any) -> str:
    """``auto`` made concrete: the demo's fixture generator gets the fixture judge, anything else Anthropic's."""
    name = getattr(llm, "judge", JUDGE_AUTO) or JUDGE_AUTO
    if name != JUDGE_AUTO:
        return name
    return "fixture" if getattr(llm, "generator", "") == "fixture" else "anthropic"


def make_judge(llm: Any) -> NodeJudge | None:
    """The judge ``[llm] judge`` names, built from the ``[llm]`` settings; None when off.

    With ``record_to`` set, every verdict is also written into that recording.
    Raises NoJudgeError when it cannot be built.
    """
    name = resolved_judge_name(llm)
    if name == JUDGE_OFF:
        return None
    target = available_judges().get(name)
    if target is None:
        raise NoJudgeError(f"no safety judge named '{name}' (known: {', '.join(setting_values())})")
    try:
        judge: NodeJudge = load_target(target)(llm)  # an entry point: typed by the protocol it promises
    except ImportError as exc:
        raise NoJudgeError(f"the '{name}' safety judge cannot load: {exc}") from exc
    record_to = getattr(llm, "record_to", "")
    if record_to:
        from pathlib import Path

        from rflow_tui.ai.fixture import RecordingJudge

        judge = RecordingJudge(judge, Path(record_to).expanduser())
    return judge
