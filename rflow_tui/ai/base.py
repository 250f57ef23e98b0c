"""The node-generator interface: what a generator is given and what it returns.

A generator turns (problem text, category, walked path) into one raw node dict.
It knows nothing of the store or the screens; every node it returns is checked by
``rflow_tui.ai.validate`` before anyone stores or shows it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from rflow_tui.domain.walk_step import WalkStep
from rflow_tui.redact import DEFAULT_PRIVACY, Privacy


@dataclass(frozen=True)
class NodeContext:
    """What determines the next node.

    ``rejection`` says why the last try was refused and ``rejection_kind`` which way
    (``"malformed"`` output or an ``"unsafe"`` step): the retry prompt differs.

    ``walked_path`` holds every step, stepped-back ones included (``step.undone``).

    ``privacy`` says what the prompt withholds (``ai.prompt``); on by default, so a
    context built anywhere never sends a ticket's secrets unless the desk turned it off.
    """

    problem_text: str
    category: str
    walked_path: list[WalkStep] = field(default_factory=list)
    rejection: str | None = None
    rejection_kind: str | None = None
    privacy: Privacy = DEFAULT_PRIVACY


@runtime_checkable
class NodeGenerator(Protocol):
    """Makes one raw node. A generator that can stream may also offer
    ``async stream(context, on_partial) -> dict``: the same node, with ``on_partial``
    called on the node as written so far (a dict, its last string cut off)."""

    name: str

    async def generate(self, context: NodeContext) -> dict[str, Any]:
        """Return one raw node: {id, type, text, yes_label?, no_label?}."""
        ...


PartialListener = Callable[[dict[str, Any]], None]


async def raw_node(
    generator: NodeGenerator, context: NodeContext, on_partial: PartialListener | None = None
) -> dict[str, Any]:
    """One raw node from ``generator``, streamed to ``on_partial`` when it can stream."""
    stream = getattr(generator, "stream", None)
    if on_partial is not None and stream is not None:
        node: dict[str, Any] = await stream(context, on_partial)
        return node
    return await generator.generate(context)
