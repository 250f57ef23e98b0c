"""Every node, from any generator or fixture, is checked here before it is stored or shown.

Schema and lengths (the API does not enforce the schema's limits), labels
(defaulting to "Yes"/"No", non-empty, distinct), terminal escape and control
characters stripped, and the hard floor scanned over text and labels.
"""

from __future__ import annotations

import re
from typing import Any

from rflow_tui.ai.base import InvalidNodeError
from rflow_tui.ai.hard_floor import scan
from rflow_tui.text import strip_controls

NODE_TYPES = ("question", "instruction", "resolution", "escalate")
MAX_ID = 64
MAX_TEXT = 600
MAX_LABEL = 60
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


class HardFloorViolation(InvalidNodeError):
    """The node tells the tech to do something on the hard floor's list."""


def _clean(value: str) -> str:
    return strip_controls(value).strip()


def _text(raw: dict, key: str, limit: int, what: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not _clean(value):
        raise InvalidNodeError(f"{what} is missing or empty")
    value = _clean(value)
    if len(value) > limit:
        raise InvalidNodeError(f"{what} is {len(value)} characters; the limit is {limit}")
    return value


def _label(raw: dict, key: str, default: str) -> str:
    value = raw.get(key)
    if value is None or (isinstance(value, str) and not _clean(value)):
        return default
    if not isinstance(value, str):
        raise InvalidNodeError(f"{key} must be text")
    value = " ".join(_clean(value).split())
    if len(value) > MAX_LABEL:
        raise InvalidNodeError(f"{key} is {len(value)} characters; a button label may have {MAX_LABEL}")
    return value


def validate_node(raw: Any) -> dict[str, Any]:
    """A clean node dict, or InvalidNodeError (HardFloorViolation for unsafe content) saying why."""
    if not isinstance(raw, dict):
        raise InvalidNodeError("the node is not a JSON object")
    node_id = _text(raw, "id", MAX_ID, "the node id")
    if not _ID.match(node_id):
        raise InvalidNodeError("the node id may use only letters, digits and _ . : -")
    node_type = raw.get("type")
    if node_type not in NODE_TYPES:
        raise InvalidNodeError(f"the node type must be one of {', '.join(NODE_TYPES)}, not {node_type!r}")
    node: dict[str, Any] = {"id": node_id, "type": node_type, "text": _text(raw, "text", MAX_TEXT, "the node text")}
    if node_type == "question":
        node["yes_label"] = _label(raw, "yes_label", "Yes")
        node["no_label"] = _label(raw, "no_label", "No")
        if node["yes_label"].casefold() == node["no_label"].casefold():
            raise InvalidNodeError("the two answer labels must differ")
    for key in ("text", "yes_label", "no_label"):
        if key in node and (violation := scan(node[key])):
            raise HardFloorViolation(str(violation))
    return node
