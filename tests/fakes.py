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


class ScriptedJudge:
    """Answers the given verdicts in order (then "safe") and remembers every node it was shown."""

    name = "scripted-judge"

    def __init__(self, *verdicts) -> None:
        self.verdicts = list(verdicts)
        self.seen: list = []

    async def judge(self, node):
        from rflow_tui.ai.judge import Verdict

        self.seen.append(node)
        return self.verdicts.pop(0) if self.verdicts else Verdict("safe", model="scripted")
