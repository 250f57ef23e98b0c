"""Ask a generator for the next node, validate it, retry once with the reason fed back."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from rflow_tui.ai.base import InvalidNodeError, NodeContext, NodeGenerator, UnsafeNodeError
from rflow_tui.ai.validate import validate_node


async def next_valid_node(generator: NodeGenerator, context: NodeContext) -> dict[str, Any]:
    """A validated node, or UnsafeNodeError after two refused tries. Other errors pass through."""
    try:
        return validate_node(await generator.generate(context))
    except InvalidNodeError as first:
        retry = replace(context, rejection=str(first))
        try:
            return validate_node(await generator.generate(retry))
        except InvalidNodeError as second:
            raise UnsafeNodeError(
                "The AI suggested a step that failed our safety checks twice, so it was not "
                f"shown ({second}). Escalate the ticket or resolve it by hand."
            ) from second
