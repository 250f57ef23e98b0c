"""Node validation. PLACEHOLDER: the generator issue replaces this with the full
schema + hard-floor validation; keep the ``validate_node`` signature."""

from __future__ import annotations

from typing import Any

from rflow_tui.ai.base import InvalidNodeError

NODE_TYPES = ("question", "instruction", "resolution", "escalate")


def validate_node(raw: Any) -> dict[str, Any]:
    """Return a clean node dict or raise InvalidNodeError with the reason."""
    if not isinstance(raw, dict):
        raise InvalidNodeError("node is not an object")
    node = {k: raw.get(k) for k in ("id", "type", "text", "yes_label", "no_label")}
    if not node["id"] or node["type"] not in NODE_TYPES or not node["text"]:
        raise InvalidNodeError("node lacks id, a known type or text")
    if node["type"] == "question":
        node["yes_label"] = node["yes_label"] or "Yes"
        node["no_label"] = node["no_label"] or "No"
        if node["yes_label"].strip().lower() == node["no_label"].strip().lower():
            raise InvalidNodeError("question labels must differ")
    else:
        node.pop("yes_label")
        node.pop("no_label")
    return node
