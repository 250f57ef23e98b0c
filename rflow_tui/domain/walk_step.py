"""One step of a walk: the one shape every writer builds and every reader reads.

A step is stored as one JSON object, one ``walk_step`` row per step (services/walks/path.py;
before migration 0009, one entry of the walk's ``walked_path`` list). The SPEC
names its fields differently for the two writers, and the stored JSON keeps
those names so existing databases and exports stay valid:

- a flow or proposal walk (``record_step``): ``node_id``, ``question``, ``answer``,
  ``l1_note``, with ``node_type`` and, for a question, the labels; for a choice
  (authored flows only), ``options`` (the labels in order), ``answer`` the chosen
  option's number ("1" to "6") and ``answer_label``;
- an AI build (``advance_ai_build``): ``node_type``, ``id``, ``text``, ``answer``,
  ``l1_note``, and for a question ``answer_label``, ``yes_label``, ``no_label``.

``WalkStep.from_json`` is the only reader of that JSON (including rows written
before ``node_type`` and labels were stored); everything else reads attributes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from rflow_tui.domain.enums import Answer, NodeType

DEFAULT_YES = "Yes"
DEFAULT_NO = "No"


class StepSource(StrEnum):
    """Which writer recorded the step: it decides the stored field names."""

    FLOW = "flow"  # record_step: an authored flow or a proposal
    AI = "ai"  # advance_ai_build


@dataclass(frozen=True, slots=True)
class WalkStep:
    """An answered question or an acknowledged instruction.

    ``answer`` is None exactly for an instruction; a question always carries both
    labels (missing ones default to Yes / No, as the SPEC says); a choice carries its
    ``options`` and the number of the one chosen.
    """

    source: StepSource
    node_id: str
    node_type: NodeType
    text: str
    answer: str | None = None  # Answer for a question, "1".."6" for a choice
    yes_label: str | None = None
    no_label: str | None = None
    l1_note: str | None = None
    undone: bool = False
    undone_at: str | None = None
    options: tuple[str, ...] = ()
    at: str | None = None  # when it was answered (ISO 8601, UTC); None on rows written before it was stored
    ai_tokens: dict[str, Any] | None = None  # an AI node's cost: tokens by role (``ai.usage``), None elsewhere

    # --- constructors: one per kind of step ------------------------------------------

    @classmethod
    def question(
        cls,
        source: StepSource,
        node_id: str,
        text: str,
        answer: str,
        *,
        yes_label: str | None = None,
        no_label: str | None = None,
        note: str | None = None,
    ) -> WalkStep:
        """An answered question; missing labels default to Yes / No."""
        if answer not in tuple(Answer):
            raise ValueError(f"a question is answered 'yes' or 'no', not {answer!r}")
        return cls(
            source,
            node_id,
            NodeType.QUESTION,
            text,
            Answer(answer),
            yes_label or DEFAULT_YES,
            no_label or DEFAULT_NO,
            note or None,
        )

    @classmethod
    def choice(
        cls, source: StepSource, node_id: str, text: str, options: list[str], answer: str, *, note: str | None = None
    ) -> WalkStep:
        """A choice answered with the number of one of its options (2 to 6 of them)."""
        if not 2 <= len(options) <= 6 or answer not in [str(n) for n in range(1, len(options) + 1)]:
            raise ValueError(f"a choice of {len(options)} options is answered with its number, not {answer!r}")
        return cls(source, node_id, NodeType.CHOICE, text, answer, l1_note=note or None, options=tuple(options))

    @classmethod
    def instruction(cls, source: StepSource, node_id: str, text: str, *, note: str | None = None) -> WalkStep:
        """An acknowledged instruction: no answer, no labels."""
        return cls(source, node_id, NodeType.INSTRUCTION, text, l1_note=note or None)

    @classmethod
    def answering(cls, source: StepSource, node: Mapping[str, Any], answer: str | None, note: str | None) -> WalkStep:
        """The step that answers ``node`` (a flow node or a served AI node, with what it cost)."""
        step = cls._answering(source, node, answer, note)
        tokens = node.get("ai_tokens")
        return replace(step, ai_tokens=dict(tokens)) if isinstance(tokens, Mapping) and tokens else step

    @classmethod
    def _answering(cls, source: StepSource, node: Mapping[str, Any], answer: str | None, note: str | None) -> WalkStep:
        node_id, text = str(node["id"]), node.get("text") or ""
        if node.get("type") == NodeType.CHOICE:
            options = [str(option.get("label", "")) for option in node.get("options") or []]
            return cls.choice(source, node_id, text, options, answer or "", note=note)
        if node.get("type") == NodeType.QUESTION:
            return cls.question(
                source,
                node_id,
                text,
                answer or "",
                yes_label=node.get("yes_label"),
                no_label=node.get("no_label"),
                note=note,
            )
        return cls.instruction(source, node_id, text, note=note)

    # --- reading -------------------------------------------------------------------------

    @property
    def is_question(self) -> bool:
        return self.node_type == NodeType.QUESTION

    @property
    def is_choice(self) -> bool:
        return self.node_type == NodeType.CHOICE

    @property
    def answer_label(self) -> str | None:
        """The button text the tech chose; None for an instruction."""
        if self.answer is None:
            return None
        if self.is_choice:
            return self.options[int(self.answer) - 1]
        return self.yes_label if self.answer == Answer.YES else self.no_label

    def answered_at(self, at: datetime) -> WalkStep:
        """This step stamped with when it was answered (for the time spent on each node)."""
        return replace(self, at=at.isoformat())

    def undo(self, at: datetime) -> WalkStep:
        """This step stepped back over: kept as history, no longer counted."""
        return replace(self, undone=True, undone_at=at.isoformat())

    # --- the stored JSON -------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        if self.source == StepSource.FLOW:
            data: dict[str, Any] = {
                "node_id": self.node_id,
                "question": self.text,
                "answer": self.answer,
                "l1_note": self.l1_note,
                "node_type": self.node_type,
            }
        else:
            data = {
                "node_type": self.node_type,
                "id": self.node_id,
                "text": self.text,
                "answer": self.answer,
                "l1_note": self.l1_note,
            }
        if self.is_question:
            data.update(answer_label=self.answer_label, yes_label=self.yes_label, no_label=self.no_label)
        if self.is_choice:
            data.update(answer_label=self.answer_label, options=list(self.options))
        if self.undone:
            data.update(undone=True, undone_at=self.undone_at)
        if self.at:
            data["at"] = self.at
        if self.ai_tokens:
            data["ai_tokens"] = self.ai_tokens
        return {key: (value.value if isinstance(value, StrEnum) else value) for key, value in data.items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WalkStep:
        """Either stored shape. A row without ``node_type`` (written before it was stored)
        is a question when its answer is yes/no, as the SPEC defines for AI steps."""
        source = StepSource.FLOW if "node_id" in data else StepSource.AI
        node_id = str(data.get("node_id") if source == StepSource.FLOW else data.get("id") or "")
        text = str((data.get("question") if source == StepSource.FLOW else data.get("text")) or "")
        answer = data.get("answer")
        stored_type = data.get("node_type")
        is_question = stored_type == NodeType.QUESTION or (stored_type is None and answer in (Answer.YES, Answer.NO))
        note = data.get("l1_note") or None
        options = data.get("options")
        if stored_type == NodeType.CHOICE and isinstance(options, list) and isinstance(answer, str):
            step = cls.choice(source, node_id, text, [str(o) for o in options], answer, note=note)
        elif is_question and answer in tuple(Answer):
            step = cls.question(
                source, node_id, text, answer, yes_label=data.get("yes_label"), no_label=data.get("no_label"), note=note
            )
        else:
            step = cls.instruction(source, node_id, text, note=note)
        if data.get("undone"):
            step = replace(step, undone=True, undone_at=data.get("undone_at"))
        if isinstance(data.get("at"), str):
            step = replace(step, at=data["at"])
        if isinstance(data.get("ai_tokens"), Mapping):
            step = replace(step, ai_tokens=dict(data["ai_tokens"]))
        return step


def read_path(walked_path: Iterable[Mapping[str, Any]] | None) -> list[WalkStep]:
    """A stored ``walked_path`` as steps (entries that are not objects are skipped)."""
    return [WalkStep.from_json(entry) for entry in walked_path or () if isinstance(entry, Mapping)]


def live_steps(steps: Iterable[WalkStep]) -> list[WalkStep]:
    """The steps that count: those stepped back over are history only."""
    return [step for step in steps if not step.undone]
