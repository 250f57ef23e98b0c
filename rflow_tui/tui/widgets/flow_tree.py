"""The flow being walked, as a tree from its start: each branch under its answer's label,
the path the walk took marked, and the node it is on singled out."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from rflow_tui.domain.enums import NodeType
from rflow_tui.flows.format import exits, node_by_id
from rflow_tui.tui.safe import clean

GLYPHS: dict[str, str] = {
    NodeType.QUESTION: "?",
    NodeType.CHOICE: "?",
    NodeType.INSTRUCTION: "•",
    NodeType.RESOLUTION: "✓",
    NodeType.ESCALATE: "⇧",
}
EXPAND_ALL_UP_TO = 60  # nodes; a bigger flow opens along the path only


class FlowTree(Tree[str]):
    """Built once from a checked document. Every label is a ``Text``, never markup; a node
    reached a second way (loops, shared steps) is a leaf pointing back, so the tree is finite."""

    def __init__(self, doc: dict[str, Any], path: list[str], current: str | None, **kwargs: Any) -> None:
        super().__init__(Text("Start"), **kwargs)
        self.doc, self.path, self.current = doc, path, current
        self.show_root = False

    def on_mount(self) -> None:
        start = self.doc.get("start")
        if not isinstance(start, str) or node_by_id(self.doc, start) is None:
            self.root.add_leaf(Text("This walk's flow has no start node."))
            return
        placed: set[str] = set()
        todo: list[tuple[TreeNode[str], str | None, str]] = [(self.root, None, start)]
        on_screen: list[TreeNode[str]] = []
        while todo:
            parent, via, node_id = todo.pop()
            node = node_by_id(self.doc, node_id) or {}
            if node_id in placed:
                parent.add_leaf(self._label(node, via, again=True), data=node_id)
                continue
            placed.add(node_id)
            branches = list(self._branches(node))
            item = parent.add(self._label(node, via), data=node_id, allow_expand=bool(branches))
            on_screen.append(item)
            todo += [(item, label, target) for target, label in reversed(branches)]
        expand_all = len(placed) <= EXPAND_ALL_UP_TO
        for item in on_screen:
            if expand_all or item.data in self.path:
                item.expand()
            if item.data == self.current:  # once the expanded lines exist
                self.call_after_refresh(self.move_cursor, item)

    @staticmethod
    def _branches(node: dict[str, Any]) -> list[tuple[str, str | None]]:
        return [(str(target), label) for _answer, label, target in exits(node)]

    def _label(self, node: dict[str, Any], via: str | None, *, again: bool = False) -> Text:
        node_id = str(node.get("id", "?"))
        text = Text()
        if via is not None:
            text.append(f"{clean(via, single_line=True)[:40]} → ", style="italic")
        if again:
            text.append(f"back to {clean(node_id, single_line=True)[:40]}", style="dim")
            return text
        text.append(f"{GLYPHS.get(str(node.get('type')), '·')} ")
        body = " ".join(clean(node.get("text", ""), single_line=True).split())
        text.append(body[:70] + ("…" if len(body) > 70 else ""))
        if node_id == self.current:
            text.append("  ◀ you are here", style="bold reverse")
            text.stylize("bold")
        elif node_id in self.path:
            text.stylize("green")
            text.append("  (walked)", style="dim")
        return text
