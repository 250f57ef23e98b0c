"""The flow document format: ids, schema, limits, and how a walk moves through a flow.

The checker is ``flows.check``; a walk becomes a flow in ``flows.walked_path``.

A flow is JSON: ``{"format", "title", "category", "match_keywords", "version",
"start", "nodes": [...]}``. Each node has an ``id``, a ``type`` and ``text``:

- ``question``: ``yes_label`` / ``no_label`` (the button texts) and ``yes`` / ``no``
  (the id of the node each answer leads to);
- ``choice`` (authored flows only; AI nodes stay two-way): ``options``, 2 to 6
  ``{"label", "next"}``, answered with the option's number;
- ``instruction``: ``next``;
- ``resolution`` / ``escalate``: terminal, nothing more.

Any node may carry ``origin: "ai"`` (it was written by the AI: captured walks and the
flows approved from them keep the mark) and, if it is not AI-written,
``safety_waivers``: the author's reviewed exceptions to named safety rules, each
``{"rule": id, "reason": why}``. A safety-rule hit is an error unless its rule is
waived on that node; a node produced by AI can never be waived.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rflow_tui.domain.enums import Answer, NodeType
from rflow_tui.domain.walk_step import WalkStep

FORMAT = "rflow.flow/1"
UNCHARTED_ID = "uncharted"
RESOLVED_ID = "resolved"
AI_ORIGIN = "ai"
SYNTHESIZED_IDS = (UNCHARTED_ID, RESOLVED_ID)  # written by rflow itself when a walk is captured


NODE_TYPES = tuple(NodeType)
ANSWERS = tuple(Answer)
SCHEMA_PATH = Path(__file__).resolve().parent.parent / "data" / "flow.schema.json"


@functools.cache
def flow_schema() -> dict[str, Any]:
    """The JSON Schema that ships with rflow: the one declaration of the format and its limits."""
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema


@dataclass(frozen=True)
class FlowLimits:
    """The flow format's lengths and counts, as the schema declares them (read, never restated)."""

    id: int
    label: int
    text: int
    help: int
    title: int
    slug: int
    category: int
    keyword: int
    description: int
    nodes: int
    waiver_reason: int
    options: tuple[int, int]  # how many a choice offers, at least and at most

    @classmethod
    def from_schema(cls, schema: dict[str, Any]) -> FlowLimits:
        top, defs = schema["properties"], schema["$defs"]
        waiver = defs["safety_waivers"]["items"]["properties"]
        return cls(
            id=defs["id"]["maxLength"],
            label=defs["label"]["maxLength"],
            text=defs["text"]["maxLength"],
            help=defs["help"]["maxLength"],
            title=top["title"]["maxLength"],
            slug=top["slug"]["maxLength"],
            category=top["category"]["maxLength"],
            keyword=defs["keyword"]["maxLength"],
            description=top["description"]["maxLength"],
            nodes=top["nodes"]["maxItems"],
            waiver_reason=waiver["reason"]["maxLength"],
            options=(defs["options"]["minItems"], defs["options"]["maxItems"]),
        )


LIMITS = FlowLimits.from_schema(flow_schema())
TOP_KEYS = {"format", "title", "slug", "category", "match_keywords", "version", "description", "start", "nodes"}
COMMON_KEYS = {"id", "type", "text", "help", "origin", "safety_waivers"}
NODE_KEYS = {
    NodeType.QUESTION: {"yes_label", "no_label", "yes", "no", *COMMON_KEYS},
    NodeType.CHOICE: {"options", *COMMON_KEYS},
    NodeType.INSTRUCTION: {"next", *COMMON_KEYS},
    NodeType.RESOLUTION: COMMON_KEYS,
    NodeType.ESCALATE: COMMON_KEYS,
}


def node_by_id(doc: Any, node_id: Any) -> dict[str, Any] | None:
    """The node with this id, or None (also for a malformed document)."""
    nodes = doc.get("nodes") if isinstance(doc, dict) else None
    if not isinstance(nodes, list):
        return None
    for node in nodes:
        if isinstance(node, dict) and node.get("id") == node_id:
            return node
    return None


def labels(node: dict[str, Any]) -> tuple[str, str]:
    """A question's button texts; missing labels default to Yes / No (as for AI nodes)."""
    return node.get("yes_label") or "Yes", node.get("no_label") or "No"


def exits(node: dict[str, Any]) -> list[tuple[str | None, str | None, Any]]:
    """Each way out of a node as (answer, button label, target): ``yes``/``no`` for a
    question, ``"1"`` to ``"6"`` for a choice, one (None, None, next) for an instruction,
    none for an end. Targets are as written (the checker says whether they exist)."""
    kind = node.get("type")
    if kind == NodeType.QUESTION:
        yes_label, no_label = labels(node)
        return [(Answer.YES.value, yes_label, node.get("yes")), (Answer.NO.value, no_label, node.get("no"))]
    if kind == NodeType.CHOICE:
        options = node.get("options")
        return [
            (str(n), str(option.get("label")), option.get("next"))
            for n, option in enumerate(options if isinstance(options, list) else [], start=1)
            if isinstance(option, dict)
        ]
    if kind == NodeType.INSTRUCTION:
        return [(None, None, node.get("next"))]
    return []


def answer_labels(node: dict[str, Any]) -> list[str]:
    """The buttons a tech picks from: a question's two labels, a choice's options; [] otherwise."""
    return [label for answer, label, _ in exits(node) if answer is not None and label is not None]


def next_node_id(node: dict[str, Any], answer: str | None) -> str | None:
    """Where an answer leads: ``yes``/``no`` for a question, an option's number for a
    choice, None to acknowledge an instruction. Terminal nodes lead nowhere (None). An
    answer the node does not offer is a caller error (ValueError)."""
    ways = exits(node)
    if node.get("type") == NodeType.INSTRUCTION:
        return node.get("next")
    for offered, _label, target in ways:
        if answer == offered:
            return target if isinstance(target, str) else None
    if ways:
        raise ValueError(f"answer with one of {', '.join(str(a) for a, _, _ in ways)}, not {answer!r}")
    return None


def position(doc: Any, steps: list[WalkStep]) -> dict[str, Any] | None:
    """The node a walk of ``doc`` is on after its live ``steps``: the start when there are
    none, else where the last one led; None when the flow has no such node."""
    if not steps:
        return node_by_id(doc, doc.get("start") if isinstance(doc, dict) else None)
    last = node_by_id(doc, steps[-1].node_id)
    try:
        return None if last is None else node_by_id(doc, next_node_id(last, steps[-1].answer))
    except ValueError:
        return None
