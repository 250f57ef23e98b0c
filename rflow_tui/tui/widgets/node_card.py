"""The step the tech is on: what kind it is, what it says, and which keys answer it."""

from __future__ import annotations

import math
import time
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import LoadingIndicator, Static

from rflow_tui.domain.enums import NodeType
from rflow_tui.tui.safe import plain

KIND_TITLES: dict[str, str] = {
    NodeType.QUESTION: "Question",
    NodeType.CHOICE: "Question",
    NodeType.INSTRUCTION: "Do this",
    NodeType.RESOLUTION: "Resolved",
    NodeType.ESCALATE: "Escalate",
}
KIND_HELP: dict[str, str] = {
    NodeType.QUESTION: "1 or y · 2 or n answers · c adds a note to the answer",
    NodeType.CHOICE: "the option's number answers · c adds a note to the answer",
    NodeType.INSTRUCTION: "Enter when it is done · c adds a note first",
    NodeType.RESOLUTION: "r resolve the ticket · e escalate if it is not fixed",
    NodeType.ESCALATE: "e escalate with a reason · r resolve if it got fixed after all",
}
ERROR_HELP = "t retry · e escalate · r resolve"
WAIT_HELP = "Esc stops the AI (your answer stays saved) · e escalate · r resolve"
clock = time.monotonic  # the waiting line's clock (a snapshot test holds it still)


HAS_MORE = " · h the author's help"


class NodeCard(Vertical):
    """One of four states: loading, a node, a message (no node to walk), or an error.

    A generation error keeps the node it followed in view, so the tech still sees
    what they answered; everything shown is plain text, never markup. An authored
    node's ``help`` (how-to detail, why the step matters) stays folded under the
    text until the tech asks for it, so the step itself reads at a glance.
    """

    _more = ""

    def compose(self) -> ComposeResult:
        yield Static(id="node-kind")
        yield Static(id="node-text")
        yield Static(id="node-more")
        yield LoadingIndicator(id="walk-loading")
        yield Static(id="walk-wait")
        yield Static(id="walk-error")
        yield Static(id="node-help")

    def on_mount(self) -> None:
        self.query_one("#node-text").display = False
        self.query_one("#node-more").display = False
        self.query_one("#walk-error").display = False
        self.query_one("#walk-wait").display = False
        self._waiting_since: float | None = None
        self._words = 0
        self._previewing = False
        self._ticker = self.set_interval(0.5, self._tick, pause=True)
        self._error = ""
        self._retry_at: float | None = None
        self._countdown = self.set_interval(1.0, self._show_error_line, pause=True)

    @property
    def has_more(self) -> bool:
        return bool(self._more)

    def toggle_more(self) -> bool:
        """Show or fold the node's help; False when the node has none."""
        more = self.query_one("#node-more", Static)
        if not self._more:
            return False
        more.display = not more.display
        return True

    def set_loading(self, loading: bool) -> None:
        self.query_one("#walk-loading").display = loading
        if not loading:
            self._waiting_since = None
            self._ticker.pause()
            self.query_one("#walk-wait").display = False

    def wait_for_ai(self) -> None:
        """The AI is writing the next step: say so, count the seconds, say how to stop it."""
        self._waiting_since = clock()
        self._words = 0
        self.query_one("#walk-error").display = False
        self.query_one("#node-help", Static).update(plain(WAIT_HELP))
        self.query_one("#walk-wait").display = True
        self._tick()
        self._ticker.resume()

    def preview(self, kind: str | None, text: str) -> None:
        """The next step as the AI writes it: whole sentences the rules passed, no buttons
        yet. Empty text takes back what was shown (a refused try)."""
        node_text = self.query_one("#node-text", Static)
        self._previewing = bool(text)
        if not text:
            self.query_one("#node-kind", Static).update("")
            node_text.display = False
            return
        title = KIND_TITLES.get(kind or "", "Next step")
        self.query_one("#walk-loading").display = False  # the text arriving says it; the wait line counts
        self.query_one("#node-kind", Static).update(plain(f"{title} · being written", single_line=True))
        node_text.update(plain(text))
        node_text.display = True

    def progress(self, words: int) -> None:
        """How far the AI has written a step it may not show yet (a judge still has to pass it)."""
        self._words = words
        self._tick()

    @property
    def waited_seconds(self) -> int | None:
        return None if self._waiting_since is None else int(clock() - self._waiting_since)

    def _tick(self) -> None:
        if self.waited_seconds is not None:
            written = f" · {self._words} words, shown once the safety check passes" if self._words else ""
            self.query_one("#walk-wait", Static).update(
                f"The AI is writing the next step · {self.waited_seconds} s{written}"
            )

    def show_node(self, node: dict[str, Any], *, note: str = "") -> None:
        """``note`` follows the kind in the title, e.g. how the step was checked."""
        kind = str(node.get("type") or "")
        title = KIND_TITLES.get(kind, kind)
        more = node.get("help")
        self._more = more if isinstance(more, str) else ""
        keys = KIND_HELP.get(kind, "") + (HAS_MORE if self._more else "")
        self._show(f"{title} · {note}" if note else title, str(node.get("text", "")), keys)
        self.query_one("#node-more", Static).update(plain(self._more))

    def show_message(self, title: str, text: str, help_text: str) -> None:
        self._more = ""
        self._show(title, text, help_text)

    def show_error(self, message: str, *, retry_after: float | None = None) -> None:
        """``retry_after``: the service asked us to wait that long; the card counts it down."""
        if self._previewing:  # a step that failed to arrive is not left half-shown
            self.preview(None, "")
        self._error = message
        self._retry_at = clock() + retry_after if retry_after else None
        self.query_one("#walk-error").display = True
        self._show_error_line()
        if self._retry_at is not None:
            self._countdown.resume()
        self.query_one("#node-help", Static).update(plain(ERROR_HELP))

    @property
    def retry_wait_left(self) -> int:
        """Whole seconds until the service said it may be called again (0: now)."""
        return 0 if self._retry_at is None else max(0, math.ceil(self._retry_at - clock()))

    def _show_error_line(self) -> None:
        left = self.retry_wait_left
        if not left:
            self._countdown.pause()
        suffix = f" · t works again in {left} s" if left else ""
        self.query_one("#walk-error", Static).update(plain(self._error + suffix))

    def _show(self, title: str, text: str, help_text: str) -> None:
        self._previewing = False
        self.query_one("#node-kind", Static).update(plain(title, single_line=True))
        node_text = self.query_one("#node-text", Static)
        node_text.update(plain(text))
        node_text.display = True
        self.query_one("#node-more").display = False  # each node opens folded
        self.query_one("#walk-error").display = False
        self.query_one("#node-help", Static).update(plain(help_text))
