"""A walk as a flow: ``normalize_walked_path`` turns the steps a tech took into a flow tree
(what the flywheel captures as a proposal), with AI-written nodes marked as such."""

from __future__ import annotations

from typing import Any

from rflow_tui.domain.enums import Answer, NodeType
from rflow_tui.domain.walk_step import StepSource, WalkStep, live_steps
from rflow_tui.flows.format import AI_ORIGIN, FORMAT, RESOLVED_ID, SYNTHESIZED_IDS, UNCHARTED_ID


def _unique(base: str, taken: set[str]) -> str:
    candidate, n = base or "step", 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    taken.add(candidate)
    return candidate


def normalize_walked_path(steps: list[WalkStep], end: dict[str, Any] | None = None) -> dict[str, Any]:
    """A walked path as a flow tree: the chosen branches in order, ending in a resolution.

    Each question keeps its labels; the branch the tech took leads on, the other one
    leads to a shared escalate node, because the walk says nothing about it. Nodes
    from AI-built steps carry ``origin: "ai"``: no author may ever waive a rule on them.
    ``end`` is the resolution node the walk reached (the fix that worked, AI-written),
    kept as the tree's last node; without one the tree ends in rflow's generic "Resolved".
    """
    steps = live_steps(steps)
    # An AI end never takes the id of rflow's own closing nodes (those stay waivable).
    taken: set[str] = {UNCHARTED_ID, RESOLVED_ID} if end else {UNCHARTED_ID}
    resolved_id = _unique(str(end["id"]) if end else RESOLVED_ID, taken)
    ids = [_unique(step.node_id or f"step-{i + 1}", taken) for i, step in enumerate(steps)]
    resolved_text = (end or {}).get("text") or "Resolved: confirm with the user and close."
    nodes: list[dict[str, Any]] = []
    needs_uncharted = False
    node: dict[str, Any]
    for i, step in enumerate(steps):
        following = ids[i + 1] if i + 1 < len(steps) else resolved_id
        if step.is_choice:
            needs_uncharted = True
            chosen = int(step.answer or 0)
            options = [
                {"label": label, "next": following if n == chosen else UNCHARTED_ID}
                for n, label in enumerate(step.options, start=1)
            ]
            node = {"id": ids[i], "type": NodeType.CHOICE.value, "text": step.text, "options": options}
        elif step.is_question:
            needs_uncharted = True
            chose_yes = step.answer == Answer.YES
            node = {
                "id": ids[i],
                "type": NodeType.QUESTION.value,
                "text": step.text,
                "yes_label": step.yes_label,
                "no_label": step.no_label,
                "yes": following if chose_yes else UNCHARTED_ID,
                "no": UNCHARTED_ID if chose_yes else following,
            }
        else:
            node = {"id": ids[i], "type": NodeType.INSTRUCTION.value, "text": step.text, "next": following}
        if step.source == StepSource.AI:
            node["origin"] = AI_ORIGIN
        nodes.append(node)
    closing: dict[str, Any] = {"id": resolved_id, "type": NodeType.RESOLUTION.value, "text": resolved_text}
    if end:
        closing["origin"] = AI_ORIGIN
    nodes.append(closing)
    if needs_uncharted:
        nodes.append(
            {
                "id": UNCHARTED_ID,
                "type": NodeType.ESCALATE.value,
                "text": "This branch was not walked when the flow was captured: escalate.",
            }
        )
    return {"format": FORMAT, "start": ids[0] if ids else resolved_id, "nodes": nodes}


def mark_ai_origin(doc: dict[str, Any]) -> dict[str, Any]:
    """The tree of an AI-built proposal with every node it got from the walk marked AI-written
    (trees captured before the mark existed included); rflow's own closing nodes stay unmarked."""
    nodes = [
        node if not isinstance(node, dict) or node.get("id") in SYNTHESIZED_IDS else {**node, "origin": AI_ORIGIN}
        for node in doc.get("nodes") or []
    ]
    return {**doc, "nodes": nodes}
