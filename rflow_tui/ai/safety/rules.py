"""Layer 1 of the safety guard: deterministic rules over the meaning of a step.

PLACEHOLDER: delegates to the old regex floor until the meaning-based engine lands.
The public surface (``Finding``, ``RuleInfo``, ``scan_node``, ``rule_catalogue``) is final.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Finding:
    """A hard-floor hit. Carries the rule, never the text it matched: refusals never quote."""

    rule_id: str
    description: str

    def __str__(self) -> str:
        return f"it tells the tech to do something L1 must never do: {self.description} (rule {self.rule_id})"


@dataclass(frozen=True)
class RuleInfo:
    id: str
    description: str


@lru_cache(maxsize=1)
def rule_catalogue() -> tuple[RuleInfo, ...]:
    """Every rule's id and description, in order (for prompts, the judge and reports)."""
    from rflow_tui.ai.hard_floor import rules

    return tuple(RuleInfo(r.id, r.description) for r in rules())


def scan_node(text: str, labels: Sequence[str] = ()) -> list[Finding]:
    """Every rule the step breaks: text and labels alone and together. Empty when safe."""
    from rflow_tui.ai.hard_floor import scan

    found: dict[str, Finding] = {}
    for part in [text, *labels, *(f"{text} {label}" for label in labels)]:
        if (v := scan(part or "")) and v.rule_id not in found:
            found[v.rule_id] = Finding(v.rule_id, v.description)
    order = [r.id for r in rule_catalogue()]
    return sorted(found.values(), key=lambda f: order.index(f.rule_id))
