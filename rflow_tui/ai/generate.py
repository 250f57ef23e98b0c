"""Ask a generator for the next node, check it, retry once with the reason fed back."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from rflow_tui.ai.base import (
    InvalidNodeError,
    NodeContext,
    NodeGenerator,
    SafetyRefusal,
    UnsafeNodeError,
    UnusableOutputError,
)
from rflow_tui.ai.validate import validate_node


async def next_valid_node(generator: NodeGenerator, context: NodeContext) -> dict[str, Any]:
    """A node that passed every check, or a refusal after two refused tries.

    The second try is told why the first was refused, and which way (malformed or
    unsafe). The last refusal decides the error: ``UnsafeNodeError`` for a safety
    refusal, ``UnusableOutputError`` for malformed output. Other errors pass through.
    """
    try:
        return validate_node(await generator.generate(context))
    except InvalidNodeError as first:
        retry = replace(context, rejection=str(first), rejection_kind=first.rejection_kind)
        try:
            return validate_node(await generator.generate(retry))
        except InvalidNodeError as second:
            raise _final_refusal(second) from second


def _final_refusal(error: InvalidNodeError) -> Exception:
    if isinstance(error, SafetyRefusal):
        return UnsafeNodeError(
            f"The AI suggested a step an L1 tech must never be told, twice, so it was not shown ({error}). "
            "Escalate the ticket or resolve it by hand."
        )
    return UnusableOutputError(
        f"The AI answered twice with something that is not a usable step ({error}). "
        "Try again, or escalate the ticket."
    )
