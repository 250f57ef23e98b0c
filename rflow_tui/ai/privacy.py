"""The desk's ``[privacy]`` settings carried to every prompt a generator builds.

Contexts are built by the services with the default (everything withheld); a desk that
adds patterns or turns redaction off gets its choice through this wrapper, which the app
puts around its generator, so no context reaches a model with another desk's policy.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from rflow_tui.ai.base import NodeContext, NodeGenerator, PartialListener
from rflow_tui.redact import Privacy


class PrivateGenerator:
    """``inner`` with every context's ``privacy`` set to the desk's."""

    def __init__(self, inner: NodeGenerator, privacy: Privacy) -> None:
        self.inner = inner
        self.privacy = privacy
        self.name = inner.name

    def __getattr__(self, attribute: str) -> Any:  # last_usage, last_latency_ms and the like
        return getattr(self.inner, attribute)

    async def generate(self, context: NodeContext) -> dict[str, Any]:
        return await self.inner.generate(replace(context, privacy=self.privacy))

    async def stream(self, context: NodeContext, on_partial: PartialListener) -> dict[str, Any]:
        stream = getattr(self.inner, "stream", None)
        if stream is None:
            return await self.generate(context)
        node: dict[str, Any] = await stream(replace(context, privacy=self.privacy), on_partial)
        return node


def with_privacy(generator: NodeGenerator, privacy: Privacy) -> NodeGenerator:
    """``generator`` as the desk's policy wants it (unwrapped when that is the default)."""
    return generator if privacy == Privacy() else PrivateGenerator(generator, privacy)
