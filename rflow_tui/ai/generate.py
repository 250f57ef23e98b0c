"""Ask a generator for the next node, check it with both safety layers, retry once.

Layer 1 (the rules, inside ``validate_node``) runs first, in microseconds; the
judge (layer 2) is started the moment the rules pass, with nothing else awaited
before it. Nothing else on a step can overlap it: the generator needs the stored
answer before it starts, and the node may be stored only once both layers passed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from rflow_tui.ai.base import NodeContext, NodeGenerator, raw_node
from rflow_tui.ai.deadline import step_deadline
from rflow_tui.ai.errors import InvalidNodeError, SafetyRefusal, UnsafeNodeError, UnusableOutputError
from rflow_tui.ai.judge import CandidateNode, JudgeRefusal, NodeJudge
from rflow_tui.ai.prompt import user_message
from rflow_tui.ai.stream import PreviewListener, SentencePreview
from rflow_tui.ai.validate import validate_node

_SEAL = object()


@dataclass(frozen=True)
class CheckedNode:
    """A node that passed validation and both safety layers, made only here.

    The store accepts a new AI node only in this shape, so nothing unchecked is served.
    ``judge`` is the judge that passed it (None: the desk runs the rules alone);
    ``prompt`` is what the model was sent for it, so a prefetched node is taken only
    where the model would be sent the very same (``fits``).
    """

    node: dict[str, Any]
    judge: NodeJudge | None
    prompt: str
    seal: object

    def fits(self, context: NodeContext, judge: NodeJudge | None) -> bool:
        """Written for ``context`` and passed by ``judge``: it may be served there."""
        return self.judge is judge and self.prompt == user_message(context)

    def __post_init__(self) -> None:
        if self.seal is not _SEAL:
            raise TypeError("a CheckedNode comes only from rflow_tui.ai.generate")


async def checked_node(
    generator: NodeGenerator,
    context: NodeContext,
    judge: NodeJudge | None,
    *,
    deadline_seconds: float | None = None,
    on_preview: PreviewListener | None = None,
) -> CheckedNode:
    """``next_valid_node``'s node, sealed as checked for the store."""
    node = await next_valid_node(generator, context, judge, deadline_seconds=deadline_seconds, on_preview=on_preview)
    return CheckedNode(node, judge, user_message(context), _SEAL)


async def judged(
    checked: CheckedNode,
    generator: NodeGenerator,
    context: NodeContext,
    judge: NodeJudge | None,
    on_preview: PreviewListener | None = None,
) -> CheckedNode:
    """``checked`` (a prefetch passed by the rules alone) passed by ``judge`` too, now that it
    is claimed; if the judge refuses it, the one try left, told why (as ``next_valid_node``'s
    second). Run inside the step's deadline; nothing of it is shown before the judge passes it."""
    if checked.judge is judge:
        return checked
    try:
        if judge is not None:
            verdict = await judge.judge(CandidateNode.of(checked.node))
            if not verdict.safe:
                raise JudgeRefusal(verdict)
        return CheckedNode(checked.node, judge, checked.prompt, _SEAL)
    except InvalidNodeError as first:
        retry = replace(context, rejection=str(first), rejection_kind=first.rejection_kind)
        try:
            node = await _checked_node(generator, retry, judge, on_preview)
        except InvalidNodeError as second:
            _clear(on_preview)
            raise _final_refusal(second) from second
    return CheckedNode(node, judge, user_message(context), _SEAL)


async def next_valid_node(
    generator: NodeGenerator,
    context: NodeContext,
    judge: NodeJudge | None,
    *,
    deadline_seconds: float | None = None,
    on_preview: PreviewListener | None = None,
) -> dict[str, Any]:
    """A node both layers passed (``judge`` None: the rules alone), or a refusal after two tries.

    ``deadline_seconds`` bounds the whole step, both tries and the judge included
    (``ai.deadline``); past it, GenerationTimeoutError. ``on_preview`` hears the node's
    text while it is written, whole sentences the rules passed (``ai.stream``); it is
    cleared when a try is refused.

    The second try is told why the first was refused, and which way (malformed or
    unsafe). The last refusal decides the error: ``UnsafeNodeError`` for a safety
    refusal (rules or judge), ``UnusableOutputError`` for malformed output. A judge
    that cannot answer raises its own ``JudgeError`` at once: nothing unjudged is shown.
    """
    async with step_deadline(deadline_seconds):
        return await _two_tries(generator, context, judge, on_preview)


async def _two_tries(
    generator: NodeGenerator, context: NodeContext, judge: NodeJudge | None, on_preview: PreviewListener | None
) -> dict[str, Any]:
    try:
        return await _checked_node(generator, context, judge, on_preview)
    except InvalidNodeError as first:
        _clear(on_preview)
        retry = replace(context, rejection=str(first), rejection_kind=first.rejection_kind)
        try:
            return await _checked_node(generator, retry, judge, on_preview)
        except InvalidNodeError as second:
            _clear(on_preview)
            raise _final_refusal(second) from second


def _clear(on_preview: PreviewListener | None) -> None:
    """Nothing of a refused try stays in view."""
    if on_preview is not None:
        on_preview(None, "")


async def _checked_node(
    generator: NodeGenerator, context: NodeContext, judge: NodeJudge | None, on_preview: PreviewListener | None
) -> dict[str, Any]:
    on_partial = SentencePreview(on_preview).update if on_preview is not None else None
    node = validate_node(await raw_node(generator, context, on_partial))
    if judge is not None:
        verdict = await judge.judge(CandidateNode.of(node))
        if not verdict.safe:
            raise JudgeRefusal(verdict)
    return node


def _final_refusal(error: InvalidNodeError) -> Exception:
    if isinstance(error, SafetyRefusal):
        return UnsafeNodeError(
            f"The AI suggested a step an L1 tech must never be told, twice, so it was not shown ({error}). "
            "t asks it once more; e escalates, r resolves."
        )
    return UnusableOutputError(
        f"The AI answered twice with something that is not a usable step ({error}). Try again, or escalate the ticket."
    )
