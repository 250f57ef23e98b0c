"""Speculative prefetch: the next node for each answer of the step on screen, written
while the tech is still reading it.

At most two requests are in flight (one per answer), each checked by
``checked_node`` like any other node: validation, the rules, the judge, the step's
deadline. A prefetched node fits only the context it was written for: ``claim``
hands it over only when the prompt the model would be sent now is the very prompt
it was sent then, so a step note, a step back or another window's step makes it
miss. Claiming one answer throws the others away; ``discard`` throws all away.
Nothing here touches the store: a prefetched node is stored as pending only once its
answer is chosen (``services.walks.ai_steps.serve_ai_node``).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from rflow_tui.ai.base import NodeContext, NodeGenerator
from rflow_tui.ai.generate import CheckedNode, checked_node
from rflow_tui.ai.judge import NodeJudge
from rflow_tui.ai.prompt import user_message
from rflow_tui.ai.stream import PreviewListener
from rflow_tui.ai.usage import Meter, metered
from rflow_tui.domain.enums import TERMINAL_NODE_TYPES, Answer, NodeType
from rflow_tui.domain.walk_step import StepSource, WalkStep

MAX_IN_FLIGHT = 2


class Prefetch:
    """One answer's next node, being written (or written) in the background."""

    def __init__(
        self,
        generator: NodeGenerator,
        context: NodeContext,
        judge: NodeJudge | None,
        deadline: float | None,
        meter: Meter | None = None,
    ) -> None:
        self.context = context
        self.preview: tuple[str | None, str] = (None, "")
        self._listener: PreviewListener | None = None
        with metered(meter):  # the task copies the context: its calls count for the walk, thrown away or not
            self.task: asyncio.Task[CheckedNode] = asyncio.ensure_future(
                checked_node(generator, context, judge, deadline_seconds=deadline, on_preview=self._previewed)
            )
        self.task.add_done_callback(_seen)

    def _previewed(self, kind: str | None, text: str) -> None:
        self.preview = (kind, text)
        if self._listener is not None:
            self._listener(kind, text)

    @property
    def ready(self) -> bool:
        """Written and checked: nothing left to wait for."""
        return self.task.done() and not self.task.cancelled() and self.task.exception() is None

    def fits(self, context: NodeContext) -> bool:
        """Written for exactly this context: the model would be sent the same prompt."""
        return user_message(context) == user_message(self.context)

    def checked(self) -> CheckedNode | None:
        """The checked node if it is ready, without waiting."""
        return self.task.result() if self.ready else None

    async def result(self, listener: PreviewListener | None = None) -> CheckedNode:
        """The checked node (or its error); ``listener`` hears the preview so far, then the rest."""
        self._listener = listener
        if listener is not None and self.preview[1]:
            listener(*self.preview)
        return await self.task

    def cancel(self) -> None:
        self.task.cancel()


def answer_contexts(context: NodeContext, node: dict[str, Any]) -> dict[str | None, NodeContext]:
    """For each answer of ``node``, served after ``context``, the context its next node is
    written from when chosen with no step note (what ``ai_steps.ai_prefetch_contexts`` reads
    from the store, made here without a read, so a hit's next prefetches leave at once)."""
    if node.get("type") in TERMINAL_NODE_TYPES:
        return {}
    answers: tuple[str | None, ...] = tuple(Answer) if node.get("type") == NodeType.QUESTION else (None,)
    return {
        answer: replace(
            context, walked_path=[*context.walked_path, WalkStep.answering(StepSource.AI, node, answer, None)]
        )
        for answer in answers
    }


def _seen(task: asyncio.Task[CheckedNode]) -> None:
    """A prefetch thrown away after it failed is nobody's error: read it here, so it is not logged."""
    if not task.cancelled():
        task.exception()


class Prefetcher:
    """The prefetches for the step on screen, keyed by answer (None: an instruction's "done")."""

    def __init__(
        self,
        generator: NodeGenerator,
        judge: NodeJudge | None,
        deadline: float | None,
        meter: Meter | None = None,
        *,
        judge_ahead: bool = True,
    ) -> None:
        self.generator = generator
        self.judge = judge if judge_ahead else None  # not ahead: the claim judges (``generate.judged``)
        self.deadline = deadline
        self.meter = meter
        self.prefetches: dict[Any, Prefetch] = {}

    def start(self, contexts: dict[Any, NodeContext]) -> None:
        """Write the next node for each answer (at most two), dropping any earlier prefetch."""
        self.discard()
        for answer, context in list(contexts.items())[:MAX_IN_FLIGHT]:
            self.prefetches[answer] = Prefetch(self.generator, context, self.judge, self.deadline, self.meter)

    def ready(self, answer: Any) -> CheckedNode | None:
        """The node prefetched for ``answer`` if it is written and checked (it stays here)."""
        prefetch = self.prefetches.get(answer)
        return prefetch.checked() if prefetch is not None else None

    def take_ready(self, answer: Any) -> tuple[CheckedNode, NodeContext] | None:
        """The node prefetched for ``answer`` and its context if it is written and checked
        (every prefetch is then thrown away), else None (nothing changes)."""
        prefetch = self.prefetches.get(answer)
        checked = prefetch.checked() if prefetch is not None else None
        if prefetch is None or checked is None:
            return None
        self.prefetches.pop(answer)
        self.discard()
        return checked, prefetch.context

    def claim(self, answer: Any, context: NodeContext) -> Prefetch | None:
        """The prefetch for ``answer`` if it fits ``context``; every other one is thrown away."""
        chosen = self.prefetches.pop(answer, None)
        self.discard()
        if chosen is not None and not chosen.fits(context):
            chosen.cancel()
            return None
        return chosen

    def discard(self) -> None:
        for prefetch in self.prefetches.values():
            prefetch.cancel()
        self.prefetches.clear()

    @property
    def in_flight(self) -> int:
        return sum(not prefetch.task.done() for prefetch in self.prefetches.values())
