"""Node validation, and the hard floor as validate_node and the retry loop apply it to a whole node."""

from __future__ import annotations

import pytest

from rflow_tui.ai.base import InvalidNodeError, UnsafeNodeError
from rflow_tui.ai.generate import next_valid_node
from rflow_tui.ai.base import NodeContext
from rflow_tui.ai.validate import HardFloorViolation, validate_node


@pytest.mark.parametrize("field", ["text", "yes_label", "no_label"])
def test_unsafe_node_is_rejected_whether_in_text_or_label(field):
    node = {"id": "q1", "type": "question", "text": "Which fix?", "yes_label": "Restart", "no_label": "Sign out"}
    node[field] = "Disable the firewall"
    with pytest.raises(HardFloorViolation, match="must never do"):
        validate_node(node)


def test_missing_labels_default_to_yes_no_and_extra_keys_are_dropped():
    node = validate_node({"id": "q1", "type": "question", "text": "Is it plugged in?", "debug": "x", "yes_label": " "})
    assert node == {"id": "q1", "type": "question", "text": "Is it plugged in?", "yes_label": "Yes", "no_label": "No"}


def test_alternatives_labels_are_kept():
    node = validate_node({"id": "q1", "type": "question", "text": "Which account?", "yes_label": "Microsoft account", "no_label": "Local account"})
    assert (node["yes_label"], node["no_label"]) == ("Microsoft account", "Local account")


@pytest.mark.parametrize(
    "raw, message",
    [
        ("not a node", "not a JSON object"),
        ({"type": "question", "text": "x"}, "node id is missing"),
        ({"id": "q 1; rm", "type": "question", "text": "x"}, "letters, digits"),
        ({"id": "q1", "type": "poem", "text": "x"}, "node type must be one of"),
        ({"id": "q1", "type": "instruction", "text": "   "}, "node text is missing"),
        ({"id": "q1", "type": "instruction", "text": "x" * 601}, "limit is 600"),
        ({"id": "q1", "type": "question", "text": "x", "yes_label": "Same", "no_label": "same"}, "labels must differ"),
        ({"id": "q1", "type": "question", "text": "x", "yes_label": "y" * 61}, "button label"),
    ],
)
def test_malformed_nodes_are_refused_with_the_reason(raw, message):
    with pytest.raises(InvalidNodeError, match=message):
        validate_node(raw)


def test_escape_sequences_and_controls_are_stripped_from_node_text():
    node = validate_node({"id": "i1", "type": "instruction", "text": "Restart\x1b[2J\x1b]0;pwned\x07 Outlook\x00"})
    assert node["text"] == "Restart Outlook"


def test_terminal_nodes_carry_no_labels():
    node = validate_node({"id": "r1", "type": "resolution", "text": "Done", "yes_label": "a", "no_label": "b"})
    assert "yes_label" not in node and "no_label" not in node


class Sequence:
    name = "sequence"

    def __init__(self, *nodes):
        self.nodes, self.contexts = list(nodes), []

    async def generate(self, context):
        self.contexts.append(context)
        return self.nodes.pop(0)


async def test_unsafe_node_is_retried_once_with_the_reason_fed_back():
    gen = Sequence({"id": "i1", "type": "instruction", "text": "Turn off the antivirus"},
                   {"id": "i1", "type": "instruction", "text": "Restart the laptop"})
    node = await next_valid_node(gen, NodeContext(problem_text="slow", category="hardware"))
    assert node["text"] == "Restart the laptop"
    assert gen.contexts[0].rejection is None
    assert "antivirus" in gen.contexts[1].rejection


async def test_second_unsafe_node_is_refused_and_never_returned():
    gen = Sequence({"id": "i1", "type": "instruction", "text": "Turn off the antivirus"},
                   {"id": "i2", "type": "instruction", "text": "Open regedit"})
    with pytest.raises(UnsafeNodeError, match="failed our safety checks twice"):
        await next_valid_node(gen, NodeContext(problem_text="slow", category="hardware"))
    assert len(gen.contexts) == 2
