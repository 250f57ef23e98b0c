"""One AI step, wherever it runs (the walk screen or a service): the prefetched node when it
fits and is sound, else one written now, checked by both safety layers, inside the step's
deadline.

What the tech may see while a step is written is decided here, once: with the rules as
the only layer, whole sentences the rules passed (``ai.stream``); with a judge, nothing
of the text at all, only how far the writing is, because the judge may still refuse it.
Whatever a failed or refused try showed is taken back before the error is raised.
"""

from __future__ import annotations

from collections.abc import Callable

from rflow_tui.ai.base import NodeContext, NodeGenerator
from rflow_tui.ai.deadline import can_start, step_deadline, too_long
from rflow_tui.ai.errors import GenerationError, UnsafeNodeError
from rflow_tui.ai.generate import CheckedNode, checked_node, judged
from rflow_tui.ai.judge import NodeJudge
from rflow_tui.ai.prefetch import Prefetch
from rflow_tui.ai.stream import PreviewListener

ProgressListener = Callable[[int], None]
"""Called with how many words of the step are written so far (never the words themselves)."""


async def next_node(
    generator: NodeGenerator,
    context: NodeContext,
    judge: NodeJudge | None,
    *,
    deadline_seconds: float | None,
    prefetch: Prefetch | None = None,
    on_preview: PreviewListener | None = None,
    on_progress: ProgressListener | None = None,
) -> CheckedNode:
    """The next node for ``context``, passed by the rules and ``judge`` (None: rules alone).

    ``prefetch``, claimed for this very context, is awaited first; if it failed, the node
    is written now, in what is left of the same deadline, unless both layers already refused
    it twice: an unsafe step is not asked for a third and fourth time (the tech has Retry).
    """
    listener = on_preview if judge is None else _counting(on_progress)
    try:
        async with step_deadline(deadline_seconds):
            if prefetch is not None:
                try:
                    return await judged(await prefetch.result(listener), generator, context, judge, listener)
                except UnsafeNodeError:
                    raise  # refused twice already: two more tries would cost as much and say the same
                except GenerationError:
                    _clear(listener)
                if not can_start(_last_latency(generator)):
                    raise too_long()  # the prefetch took the time a new request would need
            return await checked_node(generator, context, judge, deadline_seconds=deadline_seconds, on_preview=listener)
    except BaseException:
        _clear(listener)
        raise


def _last_latency(generator: NodeGenerator) -> float | None:
    """How long the generator's last call took, in seconds (None: it does not say)."""
    milliseconds = getattr(generator, "last_latency_ms", None)
    return milliseconds / 1000 if isinstance(milliseconds, (int, float)) else None


def _counting(on_progress: ProgressListener | None) -> PreviewListener | None:
    if on_progress is None:
        return None
    return lambda _kind, text: on_progress(len(text.split()))


def _clear(listener: PreviewListener | None) -> None:
    if listener is not None:
        listener(None, "")
