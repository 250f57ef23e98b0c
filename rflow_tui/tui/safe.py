"""Untrusted text (tickets, names, notes, LLM output) as inert plain text, and the
app-wide guard on the surfaces widgets do not cover.

Textual's Static, Label and Button parse a ``str`` as markup, so a ticket subject
like ``[@click=app.quit]q[/]`` would become a live action. Everything untrusted
goes through ``plain`` (a ``Text``, never parsed) after ``clean`` strips terminal
escape sequences, control and bidi characters. ``GuardedApp`` does the same for the
header title, every toast and every paste, whoever calls them: a user's name with
an OSC 52 sequence in the header would otherwise reach the terminal as is.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import events
from textual.app import App
from textual.content import Content

from rflow_tui.text import clean

__all__ = ["GuardedApp", "clean", "plain"]


def plain(value: object, *, single_line: bool = False, style: str = "") -> Text:
    return Text(clean(value, single_line=single_line), style=style)


class GuardedApp(App[int]):
    """An App whose title, notifications and pastes are cleaned before they reach the screen."""

    def format_title(self, title: str, sub_title: str) -> Content:
        return super().format_title(clean(title, single_line=True), clean(sub_title, single_line=True))

    def notify(self, message: str, *, title: str = "", markup: bool = False, **kwargs: Any) -> None:
        """Toasts are plain text: ``markup`` is accepted for Textual's signature and ignored."""
        super().notify(clean(message), title=clean(title, single_line=True), markup=False, **kwargs)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Paste):
            event.text = clean(event.text)
        await super().on_event(event)
