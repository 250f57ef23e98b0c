"""Layer 2 of the safety guard: an independent model judge for live AI nodes.

The judge sees a ``CandidateNode`` (the step's text and its answer labels) and the
rule catalogue, and nothing else: the type has no room for the ticket, the problem
text, the category or the notes, so an injection written into a ticket cannot reach
it. It answers a ``Verdict`` (safe or unsafe, the rule, a reason).

Judges are pluggable like generators (``ai.registry``). Every way a judge can fail
is its own ``JudgeError`` (``ai.errors``): the node is then not shown, and the
technician may retry, escalate or resolve.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from rflow_tui.ai.errors import MalformedVerdictError, NoJudgeError, SafetyRefusal, not_shown
from rflow_tui.domain.enums import NodeType
from rflow_tui.text import clean

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
    from rflow_tui.safety import rule_catalogue

    return {**{rule.id: rule.description for rule in rule_catalogue()}, OTHER_RULE: OTHER_DESCRIPTION}


class JudgeRefusal(SafetyRefusal):
    """The judge called a node the rules let through unsafe. Names the rule; never quotes."""

    refused_by = "the safety judge"

    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict
        super().__init__([(verdict.rule, rule_descriptions().get(verdict.rule, OTHER_DESCRIPTION))])


class UnavailableJudge:
    """Stands in for a judge that could not be built: every step is refused, never shown unjudged."""

    name = "unavailable"

    def __init__(self, why: str | None) -> None:
        self.why = why or "it could not be set up"

    async def judge(self, node: CandidateNode) -> Verdict:
        raise NoJudgeError(not_shown(f"The safety judge is unavailable ({self.why})"))
