"""Resolve and escalate dialogs: modal, validated, cancellable without losing a word.

Each takes a ``draft`` dict that it keeps up to date, so a cancelled dialog opened
again shows what the tech had typed.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, RadioButton, RadioSet, Select, Static, TextArea

from rflow_tui.domain.enums import ReasonCategory
from rflow_tui.tui.safe import plain


class Dialog(ModalScreen):
    """A modal form: Ctrl+S submits, Esc cancels and keeps the draft."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "submit", "Submit")]

    def __init__(self, draft: dict | None = None) -> None:
        super().__init__()
        self.draft = draft if draft is not None else {}

    def _error(self, message: str) -> None:
        self.query_one(".error", Static).update(plain(message))

    def action_cancel(self) -> None:
        self._save_draft()
        self.dismiss(None)

    def _save_draft(self) -> None:
        raise NotImplementedError

    def action_submit(self) -> None:
        raise NotImplementedError

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    @on(Button.Pressed, "#submit")
    def _submit_pressed(self) -> None:
        self.action_submit()


HELPFUL_CHOICES = {"helpful-yes": "Yes, the steps fixed it", "helpful-no": "No, fixed some other way"}


def helpful_label(button_id: str, chosen: bool) -> str:
    """The choice is marked in text (✓), not only by the radio's colour."""
    return ("✓ " if chosen else "  ") + HELPFUL_CHOICES[button_id]


class ResolveDialog(Dialog):
    """Dismisses with {"helpful": bool, "resolution_notes": str} or None."""

    def compose(self) -> ComposeResult:
        helpful = self.draft.get("helpful")
        with Vertical(classes="dialog"):
            yield Static("Resolve this walk", classes="dialog-title")
            yield Static("Was the walk helpful?", classes="field-label")
            with RadioSet(id="helpful"):
                for button_id, chosen in (("helpful-yes", helpful is True), ("helpful-no", helpful is False)):
                    yield RadioButton(helpful_label(button_id, chosen), id=button_id, value=chosen)
            yield Static("Resolution notes (required)", classes="field-label")
            yield TextArea(self.draft.get("resolution_notes", ""), id="resolution-notes", soft_wrap=True)
            yield Static("", classes="error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Resolve (Ctrl+S)", variant="success", id="submit")
                yield Button("Cancel (Esc)", id="cancel")

    @on(RadioSet.Changed, "#helpful")
    def _mark_choice(self) -> None:
        for button in self.query(RadioButton):
            button.label = helpful_label(button.id or "", button.value)

    def _helpful(self) -> bool | None:
        pressed = self.query_one(RadioSet).pressed_button
        return None if pressed is None else pressed.id == "helpful-yes"

    def _save_draft(self) -> None:
        self.draft.update(helpful=self._helpful(), resolution_notes=self.query_one(TextArea).text)

    def action_submit(self) -> None:
        self._save_draft()
        if self.draft["helpful"] is None:
            self._error("Say whether the walk was helpful.")
        elif not self.draft["resolution_notes"].strip():
            self._error("Write what fixed it: resolution notes are required.")
            self.query_one(TextArea).focus()
        else:
            self.dismiss({"helpful": self.draft["helpful"], "resolution_notes": self.draft["resolution_notes"].strip()})


class EscalateDialog(Dialog):
    """Dismisses with {"reason": str, "reason_category": str} or None."""

    def __init__(
        self,
        draft: dict | None = None,
        *,
        title: str = "Escalate this walk",
        category: str | None = None,
        reason: str = "",
    ) -> None:
        super().__init__(draft)
        self.title_text = title
        self.draft.setdefault("reason_category", category)
        self.draft.setdefault("reason", reason)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(plain(self.title_text, single_line=True), classes="dialog-title")
            yield Static("Reason category", classes="field-label")
            yield Select(
                [(category.label, category.value) for category in ReasonCategory],
                prompt="Choose a category",
                value=self.draft.get("reason_category") or Select.NULL,
                id="reason-category",
            )
            yield Static("Why are you escalating? (what you tried, what you saw)", classes="field-label")
            yield TextArea(self.draft.get("reason", ""), id="escalation-reason", soft_wrap=True)
            yield Static("", classes="error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Escalate (Ctrl+S)", variant="warning", id="submit")
                yield Button("Cancel (Esc)", id="cancel")

    def on_mount(self) -> None:
        if self.draft.get("reason_category"):
            self.query_one("#submit", Button).focus()

    def _save_draft(self) -> None:
        value = self.query_one(Select).value
        self.draft.update(
            reason_category=None if value is Select.NULL else value,
            reason=self.query_one(TextArea).text,
        )

    def action_submit(self) -> None:
        self._save_draft()
        if not self.draft["reason_category"]:
            self._error("Choose a reason category.")
            self.query_one(Select).focus()
        elif not self.draft["reason"].strip():
            self._error("Say why you are escalating.")
            self.query_one(TextArea).focus()
        else:
            self.dismiss({"reason": self.draft["reason"].strip(), "reason_category": self.draft["reason_category"]})


class AbandonDialog(Dialog):
    """Dismisses with {"reason": str, "start_another": bool} or None."""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("Abandon this walk", classes="dialog-title")
            yield Static(
                "The ticket goes back to the queue, open; the walk and your reason are kept.", classes="field-label"
            )
            yield Static("Why? (wrong kind of walk, wrong ticket, a duplicate…)", classes="field-label")
            yield TextArea(self.draft.get("reason", ""), id="abandon-reason", soft_wrap=True)
            yield Static("", classes="error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Abandon (Ctrl+S)", variant="warning", id="submit")
                yield Button("Abandon, walk it another way", id="switch")
                yield Button("Cancel (Esc)", id="cancel")

    def _save_draft(self) -> None:
        self.draft.update(reason=self.query_one(TextArea).text)

    def action_submit(self, start_another: bool = False) -> None:
        self._save_draft()
        if not self.draft["reason"].strip():
            self._error("Say why the walk is abandoned.")
            self.query_one(TextArea).focus()
        else:
            self.dismiss({"reason": self.draft["reason"].strip(), "start_another": start_another})

    @on(Button.Pressed, "#switch")
    def _switch_pressed(self) -> None:
        self.action_submit(start_another=True)
