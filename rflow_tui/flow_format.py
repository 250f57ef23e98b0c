"""The flow document format, and ``normalize_walked_path`` that turns a walk into one.

A flow is JSON: ``{"format", "title", "category", "match_keywords", "version",
"start", "nodes": [...]}``. Each node has an ``id``, a ``type`` and ``text``:

- ``question``: ``yes_label`` / ``no_label`` (the button texts) and ``yes`` / ``no``
  (the id of the node each answer leads to);
- ``instruction``: ``next``;
- ``resolution`` / ``escalate``: terminal, nothing more.
"""

from __future__ import annotations

from typing import Any

FORMAT = "rflow.flow/1"
TERMINAL_TYPES = ("resolution", "escalate")
UNCHARTED_ID = "uncharted"
RESOLVED_ID = "resolved"


def _unique(base: str, taken: set[str]) -> str:
    candidate, n = base or "step", 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    taken.add(candidate)
    return candidate


def live_steps(path: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The steps that count: entries marked ``undone`` (stepped back over) are history only."""
    return [step for step in path if not step.get("undone")]


def normalize_walked_path(path: list[dict[str, Any]]) -> dict[str, Any]:
    """A walked path as a flow tree: the chosen branches in order, ending in a resolution.

    Each question keeps its labels; the branch the tech took leads on, the other one
    leads to a shared escalate node, because the walk says nothing about it.
    Accepts both AI-build entries (``id``/``text``/``node_type``) and flow steps
    (``node_id``/``question``/``answer``).
    """
    steps = live_steps(path)
    taken: set[str] = {UNCHARTED_ID, RESOLVED_ID}
    ids = [_unique(str(s.get("id") or s.get("node_id") or f"step-{i + 1}"), taken) for i, s in enumerate(steps)]
    nodes: list[dict[str, Any]] = []
    needs_uncharted = False
    for i, step in enumerate(steps):
        following = ids[i + 1] if i + 1 < len(steps) else RESOLVED_ID
        text = step.get("text") or step.get("question") or ""
        answer = step.get("answer")
        is_question = step.get("node_type") == "question" or (
            step.get("node_type") is None and answer in ("yes", "no")
        )
        if is_question:
            needs_uncharted = True
            yes_label = step.get("yes_label") or "Yes"
            no_label = step.get("no_label") or "No"
            chose_yes = answer == "yes"
            nodes.append(
                {
                    "id": ids[i],
                    "type": "question",
                    "text": text,
                    "yes_label": yes_label,
                    "no_label": no_label,
                    "yes": following if chose_yes else UNCHARTED_ID,
                    "no": UNCHARTED_ID if chose_yes else following,
                }
            )
        else:
            nodes.append({"id": ids[i], "type": "instruction", "text": text, "next": following})
    nodes.append({"id": RESOLVED_ID, "type": "resolution", "text": "Resolved: confirm with the user and close."})
    if needs_uncharted:
        nodes.append(
            {
                "id": UNCHARTED_ID,
                "type": "escalate",
                "text": "This branch was not walked when the flow was captured: escalate.",
            }
        )
    return {"format": FORMAT, "start": ids[0] if ids else RESOLVED_ID, "nodes": nodes}
