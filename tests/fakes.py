"""Test doubles shared by the service and app tests."""

from __future__ import annotations

from rflow_tui.ai.base import NodeContext


class ScriptedGenerator:
    """Serves the given nodes in order and remembers every context it was asked for."""

    name = "scripted"

    def __init__(self, *nodes: dict) -> None:
        self.nodes = list(nodes)
        self.calls: list[NodeContext] = []

    async def generate(self, context: NodeContext) -> dict:
        self.calls.append(context)
        return self.nodes.pop(0)
