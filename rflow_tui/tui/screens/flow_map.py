"""The flow being walked, drawn as a tree over the walk (v on a flow or proposal walk)."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from rflow_tui.tui.safe import plain
from rflow_tui.tui.widgets.flow_tree import FlowTree


class FlowMapScreen(ModalScreen[None]):
    """Read-only: the walk goes on where it was when the map closes."""

    BINDINGS = [Binding("escape,v,q", "close", "Close")]

    def __init__(self, title: str, doc: dict[str, Any], path: list[str], current: str | None) -> None:
        super().__init__()
        self.map_title, self.doc, self.path, self.current = title, doc, path, current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog flow-map"):
            yield Static(plain(self.map_title, single_line=True), classes="dialog-title")
            yield FlowTree(self.doc, self.path, self.current, id="flow-tree")
            yield Static("↑↓ move · → ← open and fold · Esc back to the walk", classes="hint")

    def on_mount(self) -> None:
        self.query_one(FlowTree).focus()

    def action_close(self) -> None:
        self.dismiss(None)
