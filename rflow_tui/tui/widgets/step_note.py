"""The note for the step on screen: sent with the answer, and kept as a draft while typed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from textual import on, work
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Input

from rflow_tui.services.errors import DatabaseError, ServiceError
from rflow_tui.text import clean


class StepNote(Input):
    """Saves its text as a draft a moment after typing stops, and at once whenever the tech
    can no longer see it (hidden, covered, removed, the app quitting), so a quit, a crash or
    kill -9 loses none of it; the walk screen restores it on resume. ``save`` stores a draft
    ("" clears it) and raises ServiceError to refuse; a refusal keeps the text here."""

    def __init__(self, draft: str | None, *, save: Callable[[str], Awaitable[object]], delay: float) -> None:
        stored = clean(draft or "", single_line=True)
        super().__init__(stored, placeholder="Note for this step (c), saved with your answer", id="step-note")
        self._stored = stored
        self._save = save
        self._delay = delay
        self._autosave: Timer | None = None
        self._saving = asyncio.Lock()  # one save at a time, so an older text never lands last

    def on_mount(self) -> None:
        self.app.screen_change_signal.subscribe(self, self._screen_changed)

    @on(Input.Changed)
    def _typed(self) -> None:
        if self._autosave is not None:
            self._autosave.stop()
        self._autosave = self.set_timer(self._delay, self._save_in_background)

    def sent(self) -> None:
        """The note went with a stored answer, which cleared the draft in the store too."""
        self._stored = ""

    @work(exclusive=True, group="step-note")
    async def _save_in_background(self) -> None:
        await self.flush()

    async def flush(self) -> bool:
        """Store the text as the draft now if it differs from the store; False if refused."""
        async with self._saving:
            text = self.value
            if text == self._stored:
                return True
            try:
                await self._save(text)
            except ServiceError as exc:
                if isinstance(exc, DatabaseError):  # the store is away, not the note at fault: try again
                    self._autosave = self.set_timer(max(self._delay, 2.0), self._save_in_background)
                return False
            self._stored = text
        return True

    def _screen_changed(self, screen: Screen[object]) -> None:
        if screen is not self.screen:
            self._save_in_background()

    def on_hide(self) -> None:
        self._save_in_background()

    async def on_unmount(self) -> None:
        await self.flush()
