"""Every node, from any generator or fixture, is checked here before it is stored or shown.

Schema and lengths (the API does not enforce the schema's limits), labels
(defaulting to "Yes"/"No", visible, distinct after normalisation), terminal escape,
control and bidi characters stripped (``text.clean``), and the safety rules (layer 1)
scanned over the whole node: text and labels alone and together, once. A malformed
node and an unsafe one are refused with different errors (``MalformedNodeError`` /
``HardFloorViolation``), because the technician and the retry prompt are told
different things.
"""

from __future__ import annotations

import re
from typing import Any

from rflow_tui.ai.errors import MalformedNodeError, SafetyRefusal
from rflow_tui.domain.enums import AI_NODE_TYPES, NodeType
from rflow_tui.safety import Finding, scan_node
from rflow_tui.text import clean, same_label

# Stricter than the flow format (flow.schema.json): a node the model writes is read on a
# screen mid-call, so it is short, and its id is a plain slug. Messages say "AI node".
MAX_ID = 64
MAX_TEXT = 600
MAX_LABEL = 60
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


class HardFloorViolation(SafetyRefusal):
    """The rules layer found the node tells the tech to do something L1 must never do."""

    def __init__(self, findings: list[Finding]) -> None:
        super().__init__([(f.rule_id, f.description) for f in findings])


def _text(raw: dict[str, Any], key: str, limit: int, what: str, *, single_line: bool = False) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not clean(value, single_line=single_line).strip():
        raise MalformedNodeError(f"{what} is missing or empty")
    value = clean(value, single_line=single_line).strip()
    if len(value) > limit:
        raise MalformedNodeError(f"{what} is {len(value)} characters; an AI node may have at most {limit}")
    return value


def _label(raw: dict[str, Any], key: str, default: str) -> str:
    value = raw.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if not isinstance(value, str):
        raise MalformedNodeError(f"{key} must be text")
    value = clean(value, single_line=True)
    if not value:
        raise MalformedNodeError(f"{key} looks blank: it holds only invisible characters")
    if len(value) > MAX_LABEL:
        raise MalformedNodeError(
            f"{key} is {len(value)} characters; an AI node's button label may have at most {MAX_LABEL}"
        )
    return value


def validate_node(raw: Any) -> dict[str, Any]:
    """A clean node dict, or MalformedNodeError / HardFloorViolation saying why (never quoting it)."""
    if not isinstance(raw, dict):
        raise MalformedNodeError("the node is not a JSON object")
    node_id = _text(raw, "id", MAX_ID, "the node id", single_line=True)
    if not _ID.match(node_id):
        raise MalformedNodeError("an AI node's id may use only letters, digits and _ . : -")
    node_type = raw.get("type")
    if node_type not in AI_NODE_TYPES:
        raise MalformedNodeError(f"an AI node's type must be one of {', '.join(AI_NODE_TYPES)}")
    node: dict[str, Any] = {"id": node_id, "type": node_type, "text": _text(raw, "text", MAX_TEXT, "the node text")}
    if node_type == NodeType.QUESTION:
        node["yes_label"] = _label(raw, "yes_label", "Yes")
        node["no_label"] = _label(raw, "no_label", "No")
        if same_label(node["yes_label"], node["no_label"]):
            raise MalformedNodeError("the two answer labels must differ")
    labels = [node["yes_label"], node["no_label"]] if node_type == NodeType.QUESTION else []
    findings = scan_node(node["text"], labels)
    if findings:
        raise HardFloorViolation(findings)
    return node
