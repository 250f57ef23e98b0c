"""The engineer's dialogs on an escalation: a comment, a close with an outcome, taking it over.

Like the walk's dialogs, each keeps a ``draft`` dict up to date, so a cancelled
dialog (or a refused save) opened again shows what was typed.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Select, Static, TextArea

from rflow_tui.domain.enums import EscalationOutcome
from rflow_tui.tui.safe import plain
from rflow_tui.tui.screens.dialogs import Dialog


class CommentDialog(Dialog):
    """Dismisses with the comment (stripped) or None."""

    def __init__(self, draft: dict, *, ticket_id: str) -> None:
        super().__init__(draft)
        self.ticket_id = ticket_id

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(plain(f"Comment on {self.ticket_id}", single_line=True), classes="dialog-title")
            yield Static("What you found or did (every engineer sees it)", classes="field-label")
            yield TextArea(self.draft.get("body", ""), id="comment-body", soft_wrap=True)
            yield Static("", classes="error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Comment (Ctrl+S)", variant="primary", id="submit")
                yield Button("Cancel (Esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def _save_draft(self) -> None:
        self.draft["body"] = self.query_one(TextArea).text

    def action_submit(self) -> None:
        self._save_draft()
        if not self.draft["body"].strip():
            self._error("Write the comment first.")
        else:
            self.dismiss(self.draft["body"].strip())


class CloseDialog(Dialog):
    """Dismisses with {"outcome": str, "notes": str} or None."""

    def __init__(self, draft: dict, *, ticket_id: str) -> None:
        super().__init__(draft)
        self.ticket_id = ticket_id

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(plain(f"Close the escalation of {self.ticket_id}", single_line=True), classes="dialog-title")
            yield Static("Outcome", classes="field-label")
            yield Select(
                [(outcome.label, outcome.value) for outcome in EscalationOutcome],
                prompt="Choose an outcome",
                value=self.draft.get("outcome") or Select.NULL,
                id="outcome",
            )
            yield Static("What was done (an internal ticket keeps it as its resolution)", classes="field-label")
            yield TextArea(self.draft.get("notes", ""), id="outcome-notes", soft_wrap=True)
            yield Static("", classes="error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close it (Ctrl+S)", variant="success", id="submit")
                yield Button("Cancel (Esc)", id="cancel")

    def _save_draft(self) -> None:
        value = self.query_one(Select).value
        self.draft.update(outcome=None if value is Select.NULL else value, notes=self.query_one(TextArea).text)

    def action_submit(self) -> None:
        self._save_draft()
        if not self.draft["outcome"]:
            self._error("Choose an outcome.")
            self.query_one(Select).focus()
        elif not self.draft["notes"].strip():
            self._error("Say what was done.")
            self.query_one(TextArea).focus()
        else:
            self.dismiss({"outcome": self.draft["outcome"], "notes": self.draft["notes"].strip()})


class TakeOverDialog(ModalScreen[bool]):
    """Someone else is on it: taking it over is one deliberate Enter, never a stray ``c``."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("Take it over?", classes="dialog-title")
            yield Static(plain(self.question))
            with Horizontal(classes="dialog-buttons"):
                yield Button("Take it over (Enter)", variant="warning", id="submit")
                yield Button("Cancel (Esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#submit", Button).focus()

    @on(Button.Pressed, "#submit")
    def _take_over(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)
