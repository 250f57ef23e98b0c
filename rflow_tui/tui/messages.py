"""App-wide messages: what a screen or the palette asks of the app, posted instead of
calling the App's methods, so no screen imports the App."""

from __future__ import annotations

from typing import Any

from textual.message import Message


class TicketChosen(Message):
    """The tech chose a ticket to walk: the app offers the ways to walk it."""

    def __init__(self, ticket: Any) -> None:
        super().__init__()
        self.ticket = ticket


class ResumeRequested(Message):
    """The tech asked to resume an unfinished walk; ``active`` is the list when already read."""

    def __init__(self, active: Any = None) -> None:
        super().__init__()
        self.active = active


class ReopenRequested(Message):
    """The tech asked to reopen a resolved or escalated ticket: the app asks them to confirm."""

    def __init__(self, ticket: Any) -> None:
        super().__init__()
        self.ticket = ticket


class WalkEnded(Message):
    """A walk was resolved, escalated or abandoned: what it owes the PSA is due now."""
