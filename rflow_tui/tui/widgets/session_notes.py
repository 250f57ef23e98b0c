"""The walk's session notes: the editor, its autosave, and where a refusal is shown."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Static, TextArea

from rflow_tui.services.errors import DatabaseError, ServiceError
from rflow_tui.tui.safe import clean, plain


def notes_text(walk_notes: list[Any] | None) -> str:
    """The pane holds one text; the store keeps it as a one-item list (see ``notes_payload``)."""
    return "\n".join(note.get("text", "") if isinstance(note, dict) else str(note) for note in walk_notes or [])


def notes_payload(text: str) -> list[str]:
    return [text] if text.strip() else []


class SessionNotes(Vertical):
    """Saves a moment after typing stops, and at once whenever the tech can no longer
    see the notes (hidden, covered by another screen, removed), so no way out of a
    screen loses a word. A refused save says why here and keeps the text in the editor.

    ``save`` stores a notes list; it raises ServiceError to refuse.
    """

    def __init__(
        self, notes: list[Any] | None, *, save: Callable[[list[str]], Awaitable[object]], delay: float
    ) -> None:
        super().__init__()
        self._stored = clean(notes_text(notes))  # what the editor starts with: nothing hostile from the store
        self._save = save
        self._delay = delay
        self._autosave: Timer | None = None
        self._saving = asyncio.Lock()  # one save at a time, so an older text never lands last
        # Held directly: when this widget unmounts, its children have already left the DOM.
        self.editor = TextArea(self._stored, id="session-notes", soft_wrap=True)
        self._status_line = Static("", id="notes-status")

    def compose(self) -> ComposeResult:
        yield Static("Session notes (s) · autosaved", id="notes-title")
        yield self.editor
        yield self._status_line

    def on_mount(self) -> None:
        self.app.screen_change_signal.subscribe(self, self._screen_changed)

    @property
    def text(self) -> str:
        return self.editor.text

    def focus_editor(self) -> None:
        """Into the notes with the cursor after the last word, ready to add a line."""
        self.editor.focus()
        self.editor.move_cursor(self.editor.document.end)

    # --- saving ------------------------------------------------------------------

    @on(TextArea.Changed, "#session-notes")
    def _typed(self) -> None:
        self._status("Editing…")
        if self._autosave is not None:
            self._autosave.stop()
        self._autosave = self.set_timer(self._delay, self._save_in_background)

    @work(exclusive=True, group="notes")
    async def _save_in_background(self) -> None:
        await self.flush()

    async def flush(self) -> bool:
        """Store the editor's text now if it differs from the store; False if refused.

        Compares the text itself rather than waiting for a Changed event: the last
        keystroke's event may not have arrived when the tech leaves.
        """
        async with self._saving:
            text = self.text
            if text == self._stored:
                return True
            try:
                await self._save(notes_payload(text))
            except ServiceError as exc:
                self._status(f"Not saved: {exc}", error=True)
                if isinstance(exc, DatabaseError):  # the store is away, not the notes at fault: try again
                    self._autosave = self.set_timer(max(self._delay, 2.0), self._save_in_background)
                return False
            self._stored = text
        if self.text == text:
            self._status("Saved")
        return True

    def _status(self, message: str, *, error: bool = False) -> None:
        self._status_line.update(plain(message))
        self._status_line.set_class(error, "error")

    # --- every way out saves -------------------------------------------------------

    def _screen_changed(self, screen: Screen[object]) -> None:
        if screen is not self.screen:  # a dialog or another screen now covers the notes
            self._save_in_background()

    def on_hide(self) -> None:
        self._save_in_background()

    async def on_unmount(self) -> None:
        await self.flush()  # awaited before the widget goes; the app's store is still open
