"""rflow's own commands in the command palette (Ctrl+P): go to a screen, resume,
start a walk, show the keys, switch theme, and find a ticket by id or subject (an open one
to walk, a resolved or escalated one to reopen). A command is found by its title or by the
words it is known by ("escal" finds the escalations screen and, for a tech, My walks).

The palette runs ``search`` in its own worker, so the ticket query never blocks the
UI. Ticket text is untrusted: it is shown as plain ``Text`` and never goes through
the matcher's highlighter (which parses markup).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from textual.command import DiscoveryHit, Hit, Hits, Provider

from rflow_tui.tui.messages import ReopenRequested, TicketChosen
from rflow_tui.tui.safe import plain

TICKET_HITS = 8


class Command(NamedTuple):
    title: str
    help: str
    run: Callable[[], Any]
    known_as: str = ""  # other words a user may type for it


class RflowCommands(Provider):
    """What a user of this desk may do from anywhere, filtered by role."""

    def _commands(self) -> list[Command]:
        app: Any = self.app
        ctx = app.ctx
        commands = [
            Command("Show keys", "The keys of this screen and the global ones (? or F1)", app.action_key_sheet),
            Command("Switch theme", "Pick another colour theme", app.action_change_theme),
        ]
        if ctx is None:  # still opening the desk
            return commands
        if ctx.is_l1:
            from rflow_tui.tui.screens.picker import PickerScreen  # here, not at start-up: it imports the store

            screen = self.screen
            on_picker = isinstance(screen, PickerScreen)
            commands += [
                Command("Tickets", "The open queue (F2)", app.action_show_picker),
                Command(
                    "Start a walk",
                    "On the highlighted ticket" if on_picker else "Pick a ticket in the open queue",
                    screen.action_open_ticket if isinstance(screen, PickerScreen) else app.action_show_picker,
                ),
                Command("Resume a walk", "Your unfinished walks", app.action_resume_walk),
                Command(
                    "Closed tickets",
                    "Resolved and escalated tickets, to find and reopen one (Ctrl+O on the tickets screen)",
                    app.action_show_closed_tickets,
                    "reopen resolved escalated finished",
                ),
            ]
        if ctx.is_engineer:
            commands += [
                Command(
                    "Open escalations", "Escalated walks, live (F3)", app.action_show_escalations, "escalated walks"
                ),
                Command("Open proposals", "Proposed flows to approve or reject (F4)", app.action_show_proposals),
            ]
            commands += self._escalation_commands()
        elif ctx.is_l1:
            commands.append(
                Command(
                    "My walks",
                    "Your recent resolved, escalated and abandoned walks, and what became of them (F3)",
                    app.action_show_escalations,
                    "escalations finished history",
                )
            )
        return commands

    def _escalation_commands(self) -> list[Command]:
        """Working the selected escalation, offered on the escalations screen only."""
        from rflow_tui.tui.screens.escalations import EscalationsScreen

        screen = self.screen
        if not isinstance(screen, EscalationsScreen):
            return []
        return [
            Command("Claim escalation", "Be on the selected one (yours: let it go) (c)", screen.action_claim),
            Command("Comment on escalation", "Add a comment every engineer sees (m)", screen.action_comment),
            Command("Close escalation", "Close the selected one with an outcome (d)", screen.action_close_escalation),
            Command("Reopen escalation", "Open the selected closed one again (o)", screen.action_reopen),
            Command("Filter escalations", "All, unclaimed only, mine only (f)", screen.action_cycle_filter),
            Command(
                "Open inbox", "Your escalation notifications, with the unread ones marked (n)", screen.action_inbox
            ),
        ]

    async def discover(self) -> Hits:
        for command in self._commands():
            yield DiscoveryHit(command.title, command.run, help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in self._commands():
            score = matcher.match(command.title)
            if score <= 0 and command.known_as:  # by another name: ranked below a title match
                score = 0.8 * max(matcher.match(word) for word in command.known_as.split())
            if score > 0:
                yield Hit(score, matcher.highlight(command.title), command.run, help=command.help)
        async for hit in self._tickets(query):
            yield hit

    async def _tickets(self, query: str) -> Hits:
        """Open tickets of this account whose id, subject, requester or category contain the query."""
        app: Any = self.app
        ctx = app.ctx
        if ctx is None or not ctx.is_l1 or len(query.strip()) < 2:
            return
        from rflow_tui.services.errors import ServiceError
        from rflow_tui.services.tickets import list_open_tickets

        try:
            found = await ctx.call(list_open_tickets, search=query, sort="id", limit=TICKET_HITS)
            closed = await ctx.call(list_open_tickets, search=query, sort="id", limit=TICKET_HITS, closed=True)
        except ServiceError as exc:
            app.notify(f"Cannot search tickets: {exc}", severity="error", markup=False)
            return
        for ticket in found:
            title = plain(
                f"{ticket.ticket_id} · {ticket.subject} · {ticket.requester or 'no requester'}", single_line=True
            )
            # help is parsed as markup by the palette: only our own words go there
            yield Hit(
                0.9, title, _post(app, TicketChosen(ticket)), text=title.plain, help="Start a walk on this ticket"
            )
        for ticket in closed:
            status = ticket.status.replace("_", " ")
            title = plain(f"{ticket.ticket_id} · {ticket.subject} · {status}", single_line=True)
            help = f"Closed ({status}): reopen it to walk it again"
            yield Hit(0.85, title, _post(app, ReopenRequested(ticket)), text=title.plain, help=help)


def _post(app: Any, message: Any) -> Callable[[], None]:
    return lambda: app.post_message(message)
