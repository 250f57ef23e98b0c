"""Node validation, and the hard floor as validate_node and the retry loop apply it to a whole node."""

from __future__ import annotations

import pytest

from rflow_tui.ai.base import NodeContext
from rflow_tui.ai.errors import InvalidNodeError, MalformedNodeError, UnsafeNodeError, UnusableOutputError
from rflow_tui.ai.generate import next_valid_node
from rflow_tui.ai.prompt import user_message
from rflow_tui.ai.validate import HardFloorViolation, validate_node
from rflow_tui.safety import scan_node


@pytest.mark.parametrize("field", ["text", "yes_label", "no_label"])
def test_unsafe_node_is_rejected_whether_in_text_or_label(field):
    node = {"id": "q1", "type": "question", "text": "Which fix?", "yes_label": "Restart", "no_label": "Sign out"}
    node[field] = "Disable the firewall"
    with pytest.raises(HardFloorViolation) as caught:
        validate_node(node)
    assert caught.value.rule_ids and all(rule_id in str(caught.value) for rule_id in caught.value.rule_ids)
    assert "Disable the firewall" not in str(caught.value)


def test_missing_labels_default_to_yes_no_and_extra_keys_are_dropped():
    node = validate_node({"id": "q1", "type": "question", "text": "Is it plugged in?", "debug": "x", "yes_label": " "})
    assert node == {"id": "q1", "type": "question", "text": "Is it plugged in?", "yes_label": "Yes", "no_label": "No"}


def test_alternatives_labels_are_kept():
    node = validate_node(
        {
            "id": "q1",
            "type": "question",
            "text": "Which account?",
            "yes_label": "Microsoft account",
            "no_label": "Local account",
        }
    )
    assert (node["yes_label"], node["no_label"]) == ("Microsoft account", "Local account")


@pytest.mark.parametrize(
    "raw, message",
    [
        ("not a node", "not a JSON object"),
        ({"type": "question", "text": "x"}, "node id is missing"),
        ({"id": "q 1; rm", "type": "question", "text": "x"}, "letters, digits"),
        ({"id": "q1", "type": "poem", "text": "x"}, "an AI node's type must be one of"),
        ({"id": "c1", "type": "choice", "text": "Which?", "options": []}, "an AI node's type must be one of"),
        ({"id": "q1", "type": "instruction", "text": "   "}, "node text is missing"),
        ({"id": "q1", "type": "instruction", "text": "x" * 601}, "an AI node may have at most 600"),
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


UNSAFE_PHRASE = "Turn off the antivirus quickly-zebra"


async def test_unsafe_node_is_retried_once_with_the_rule_fed_back_never_the_text():
    gen = Sequence(
        {"id": "i1", "type": "instruction", "text": UNSAFE_PHRASE},
        {"id": "i1", "type": "instruction", "text": "Restart the laptop"},
    )
    node = await next_valid_node(gen, NodeContext(problem_text="slow", category="hardware"), judge=None)
    assert node["text"] == "Restart the laptop"
    assert gen.contexts[0].rejection is None
    retry = gen.contexts[1]
    assert retry.rejection_kind == "unsafe"
    rule_id = scan_node(UNSAFE_PHRASE)[0].rule_id
    prompt = user_message(retry)
    assert f"rule {rule_id}" in prompt and "rejected by the safety check" in prompt
    assert "zebra" not in prompt.lower() and "zebra" not in retry.rejection


async def test_second_unsafe_node_is_refused_naming_the_rule_and_never_quoting_it():
    gen = Sequence(
        {"id": "i1", "type": "instruction", "text": UNSAFE_PHRASE},
        {"id": "i2", "type": "instruction", "text": UNSAFE_PHRASE},
    )
    with pytest.raises(UnsafeNodeError, match="must never be told") as caught:
        await next_valid_node(gen, NodeContext(problem_text="slow", category="hardware"), judge=None)
    assert len(gen.contexts) == 2
    assert scan_node(UNSAFE_PHRASE)[0].rule_id in str(caught.value)
    assert "zebra" not in str(caught.value).lower()


async def test_malformed_output_gets_its_own_feedback_and_its_own_error():
    too_long = {"id": "i1", "type": "instruction", "text": "x" * 700}
    gen = Sequence(too_long, {"id": "i2", "type": "poem", "text": "Restart the laptop"})
    with pytest.raises(UnusableOutputError, match="not a usable step") as caught:
        await next_valid_node(gen, NodeContext(problem_text="slow", category="hardware"), judge=None)
    assert not isinstance(caught.value, UnsafeNodeError) and "type must be one of" in str(caught.value)
    retry = gen.contexts[1]
    assert retry.rejection_kind == "malformed" and "an AI node may have at most 600" in retry.rejection
    prompt = user_message(retry)
    assert "could not be used" in prompt and "matching the schema" in prompt
    assert "safety check" not in prompt


def test_malformed_and_unsafe_are_different_error_types():
    with pytest.raises(MalformedNodeError):
        validate_node({"id": "i1", "type": "instruction", "text": ""})
    with pytest.raises(HardFloorViolation) as caught:
        validate_node({"id": "i1", "type": "instruction", "text": UNSAFE_PHRASE})
    assert not isinstance(caught.value, MalformedNodeError)
