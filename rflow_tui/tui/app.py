"""The rflow app: paints at once, then opens the store in a worker and shows the
right first screen for the user (techs: resume or picker; engineers: escalations)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, LoadingIndicator, Static, TextArea

from rflow_tui.tui.messages import ReopenRequested, ResumeRequested, TicketChosen, WalkEnded
from rflow_tui.tui.palette import RflowCommands
from rflow_tui.tui.safe import GuardedApp, plain


class RflowApp(GuardedApp):
    CSS_PATH = "app.tcss"
    TITLE = "rflow"
    COMMANDS = GuardedApp.COMMANDS | {RflowCommands}
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("f1", "key_sheet", "Keys"),
        # priority, so a focused table or list does not swallow it; text fields keep it (check_action)
        Binding("question_mark", "key_sheet_unless_typing", "Keys", show=False, priority=True),
        # The footer keeps room for each screen's own keys; these are in the key sheet and the palette
        Binding("f2", "show_picker", "Tickets", show=False),
        Binding("f3", "show_escalations", "Escalations (techs: my walks)", show=False),
        Binding("f4", "show_proposals", "Proposals", show=False),
        Binding("ctrl+p", "command_palette", "Commands", show=False, priority=True),
    ]

    def __init__(self, settings: Any, *, email: str | None = None, context: Any = None, start: str = "auto") -> None:
        super().__init__()
        self.settings = settings
        self.email = email
        self.ctx = context
        self.start = start
        self.ready = False  # the first screen is chosen (tests and the palette wait for it)
        self._models_warm = False
        self._psa_due = asyncio.Event()  # a walk ended: what it owes the PSA is delivered now
        self._alerts_due = asyncio.Event()  # ... and its escalation's alert sent now
        self._quit_anyway = False
        self._rights_changed = False  # the kept screens were built for the rights the user had

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Opening the desk…", id="splash-text")
        yield LoadingIndicator(id="splash")
        yield Footer()

    def on_mount(self) -> None:
        self._catch_termination()
        if self.ctx is None:
            # After the first paint: the worker's first act is importing the store layer
            # (~250 ms of SQLAlchemy/SQLModel), which would otherwise hold the splash back.
            self.call_after_refresh(self.open_desk)
        else:
            self.show_first_screen()

    @work(exclusive=True, group="open")
    async def open_desk(self) -> None:
        from rflow_tui.services.app_context import open_context
        from rflow_tui.services.errors import ServiceError

        try:
            self.ctx = await open_context(self.settings, self.email)
        except ServiceError as exc:
            self.exit(2, message=plain(f"rflow: {exc}"))
            return
        self.show_first_screen()

    async def action_quit(self) -> None:
        """Quit, saving session notes typed since the last autosave first.

        If they cannot be saved (too large, store busy) the app stays open and says so;
        a second Ctrl+Q quits without them.
        """
        if not self._quit_anyway and not await self._save_notes():
            self._quit_anyway = True
            self.notify(
                "Session notes are not saved (see the walk screen). Press Ctrl+Q again to quit without them.",
                severity="error",
                timeout=10,
                markup=False,
            )
            return
        self.exit()

    async def _save_notes(self) -> bool:
        """Save every open session-notes pane and step-note draft now; False if a pane refused
        (it says why on screen). A step-note draft the store refuses does not hold the quit."""
        from rflow_tui.tui.widgets import SessionNotes, StepNote

        for screen in self.screen_stack:
            for draft in screen.query(StepNote):
                await draft.flush()
            for notes in screen.query(SessionNotes):
                if not await notes.flush():
                    return False
        return True

    def _catch_termination(self) -> None:
        """SIGTERM or SIGHUP (terminal closed) save the notes and exit, instead of dying mid-word."""
        import asyncio
        import contextlib
        import signal

        if self.is_headless:
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not on this platform / thread
                loop.add_signal_handler(sig, self._terminated, sig)

    def _terminated(self, sig: int) -> None:
        self.run_worker(self._save_and_exit(sig), group="terminate", exclusive=True)

    async def _save_and_exit(self, sig: int) -> None:
        import os
        import signal

        await self._save_notes()  # best effort: nobody is left to ask
        if sig == signal.SIGHUP:
            # The terminal is gone: nothing to restore, and a clean exit would block writing to it.
            signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)
            return
        self.exit()

    def show_first_screen(self) -> None:
        self.ctx.on_rights_changed = self.rights_changed
        user = self.ctx.user
        self.sub_title = f"{user.name or user.email} · {user.account_role}"
        wants_escalations = self.start == "escalations" or (self.start == "auto" and not self.ctx.is_l1)
        if wants_escalations and self.ctx.is_engineer:
            self.action_show_escalations()
        else:
            if wants_escalations:  # `rflow escalations` run by an L1 tech
                self.notify("Escalations are for owners, admins and engineers: here are your tickets.", markup=False)
            self.action_show_picker()
        self.ready = True
        psa = self.settings.psa
        if psa.kind and (psa.deliver_from_app or psa.pull_on_start):
            self.keep_psa_in_sync()
        if self.settings.alerts.urls:
            self.keep_alerts_going()

    @work(group="psa", exclusive=True)
    async def keep_psa_in_sync(self) -> None:
        """Deliver what walks owe the PSA while the app runs (``services.psa_sync``)."""
        from rflow_tui.services.psa_sync import keep_in_sync

        await keep_in_sync(
            self.ctx.open_db,
            user=lambda: self.ctx.user,
            settings=self.settings,
            wake=self._psa_due,
            tell=lambda news: self.notify(news, timeout=8, markup=False),
        )

    @work(group="alerts", exclusive=True)
    async def keep_alerts_going(self) -> None:
        """Send the escalation alerts that are due while the app runs (its config has the URLs)."""
        from rflow_tui.services.alert_outbox import keep_sending

        await keep_sending(
            self.ctx.open_db,
            user=lambda: self.ctx.user,
            settings=self.settings,
            wake=self._alerts_due,
            tell=lambda news: self.notify(news, timeout=8, markup=False),
        )

    @on(WalkEnded)
    def _walk_ended(self) -> None:
        self._psa_due.set()
        self._alerts_due.set()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Textual's own commands, less the two rflow replaces (theme and keys)."""
        for command in super().get_system_commands(screen):
            if command.title not in ("Theme", "Keys"):
                yield command

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # "?" is a character in a text field; F1 still opens the sheet
        return not (action == "key_sheet_unless_typing" and isinstance(self.focused, (Input, TextArea)))

    def action_key_sheet_unless_typing(self) -> None:
        self.action_key_sheet()

    def action_key_sheet(self) -> None:
        from rflow_tui.tui.screens.keys import KeySheet

        if isinstance(self.screen, KeySheet):
            self.screen.dismiss(None)
        else:
            self.push_screen(KeySheet(self.screen))

    def open_ticket(self, ticket) -> None:
        """Offer the ways to walk ``ticket``; the walk opens once one is started."""
        from rflow_tui.tui.screens.start import StartDialog

        self.push_screen(StartDialog(self.ctx, ticket), self._open_walk)
        self.warm_up_models()

    @on(TicketChosen)
    def _ticket_chosen(self, message: TicketChosen) -> None:
        self.open_ticket(message.ticket)

    @on(ReopenRequested)
    def _reopen_requested(self, message: ReopenRequested) -> None:
        """A closed ticket (picker or palette): confirmed, reopened, and the queue shows it open."""
        from rflow_tui.tui.screens.reopen import ReopenDialog

        def reopened(ticket) -> None:
            if ticket is not None:
                self.notify(f"{ticket.ticket_id} is open again: it is back in the queue", markup=False)

        self.push_screen(ReopenDialog(self.ctx, message.ticket), reopened)

    @on(ResumeRequested)
    def _resume_requested(self, message: ResumeRequested) -> None:
        self.action_resume_walk(message.active)

    def action_resume_walk(self, active=None) -> None:
        from rflow_tui.tui.screens.resume import ResumeDialog

        self.push_screen(ResumeDialog(self.ctx, active), self._open_walk)
        self.warm_up_models()

    @work(group="warm-up", exclusive=True)
    async def warm_up_models(self) -> None:
        """While the tech reads the dialog, import the AI SDKs (seconds) in a thread, once,
        so an AI step does not wait for them. A failure here is the step's to report."""
        if self._models_warm:
            return
        self._models_warm = True
        for warm_up in self.ctx.model_warm_ups():
            with contextlib.suppress(Exception):
                await asyncio.to_thread(warm_up)

    def _open_walk(self, walk) -> None:
        if walk is not None:
            from rflow_tui.tui.screens.walk import open_walk

            open_walk(self, self.ctx, walk)

    def rights_changed(self, refused: Any) -> None:
        """The user's rights changed while the app was open (``ctx.user`` is already fresh):
        leave the surface they lost for one they may still use, or for the splash."""
        from rflow_tui.services.access import Need, can_log_in

        user = self.ctx.user
        self.sub_title = f"{user.name or user.email} · {user.account_role}"
        self._rights_changed = True
        if can_log_in(user) and refused.need is not Need.WALK and self.ctx.is_l1:
            self.call_later(self.action_show_picker)
        elif can_log_in(user) and refused.need is not Need.REVIEW and self.ctx.is_engineer:
            self.call_later(self.action_show_escalations)
        else:
            self.call_later(self._signed_out, str(refused))

    def _signed_out(self, why: str) -> None:
        """No screen is left for this user: back to the splash, saying why (Ctrl+Q quits)."""
        popped = self.screen_stack[1:]
        while len(self.screen_stack) > 1:
            self.pop_screen()
        self._forget_kept_screens(popped)
        self.query_one("#splash").display = False
        self.query_one("#splash-text", Static).update(plain(f"{why}\n\nCtrl+Q quits."))

    def _require(self, allowed: bool, message: str) -> bool:
        if not allowed:
            self.notify(message, severity="warning", markup=False)
        return allowed

    def _may_walk(self) -> bool:
        return self.ctx is not None and self._require(
            self.ctx.is_l1, "Only L1 techs and engineers with coverage walk tickets"
        )

    def action_show_picker(self) -> None:
        if self._may_walk():
            self._switch("tickets")

    def action_show_closed_tickets(self) -> None:
        """The picker on its closed tickets (the palette's "Closed tickets")."""
        if self._may_walk():
            self.kept_screen("tickets").show_closed(True)  # type: ignore[attr-defined]
            self._switch("tickets")

    def action_show_escalations(self) -> None:
        """Engineers see the desk's escalations; an L1 tech sees their own finished walks."""
        if self.ctx is not None and not self.ctx.is_engineer and self.ctx.is_l1:
            self._switch("my_walks")
            return
        if self.ctx is None or not self._require(
            self.ctx.is_engineer, "Only owners, admins and engineers see escalations"
        ):
            return
        self._switch("escalations")

    def action_show_proposals(self) -> None:
        if self.ctx is None or not self._require(
            self.ctx.is_engineer, "Only owners, admins and engineers review proposals"
        ):
            return
        self._switch("proposals")

    def kept_screen(self, name: str) -> Screen:
        """The one screen behind F2/F3/F4 ``name``, made on first use and kept installed, so its
        filter, selection and scroll are still there when the user comes back to it."""
        if not self.is_screen_installed(name):
            self.install_screen(_make_kept_screen(name, self.ctx), name)
        return self.get_screen(name)

    def _forget_kept_screens(self, popped: list[Screen]) -> None:
        """Drop every kept screen (rights changed: what they show may no longer be this user's to see).

        ``popped`` were just taken off the stack: Textual removes those itself once uninstalled.
        """
        for name in KEPT_SCREENS:
            if self.is_screen_installed(name):
                screen = self.get_screen(name)
                self.uninstall_screen(name)
                if screen not in popped:
                    screen.remove()

    @work(exclusive=True, group="switch")
    async def _switch(self, name: str) -> None:
        """Show the kept screen ``name``: close whatever is above the base screen (a walk, a
        dialog) once the notes of any walk being left are saved; notes that cannot be saved
        keep the walk open."""
        if not await self._save_notes():
            self.notify(
                "Session notes are not saved (see the walk screen): shorten them before leaving the walk.",
                severity="error",
                timeout=10,
                markup=False,
            )
            return
        if self._rights_changed:
            self._rights_changed = False
            while len(self.screen_stack) > 1:
                await self.pop_screen()
            self._forget_kept_screens([])
        target = self.kept_screen(name)
        while len(self.screen_stack) > 1 and self.screen is not target:
            await self.pop_screen()
        if self.screen is not target:
            self.push_screen(target)

    async def on_unmount(self) -> None:
        if self.ctx is not None:
            await self.ctx.settle()
        if self.ctx is not None and getattr(self.ctx, "engine", None) is not None:
            await self.ctx.engine.dispose()


KEPT_SCREENS = ("tickets", "escalations", "my_walks", "proposals")


def _make_kept_screen(name: str, ctx: Any) -> Screen:
    """Build a kept screen on first use (imported late: the splash paints before these load)."""
    if name == "tickets":
        from rflow_tui.tui.screens.picker import PickerScreen

        return PickerScreen(ctx)
    if name == "escalations":
        from rflow_tui.tui.screens.escalations import EscalationsScreen

        return EscalationsScreen(ctx)
    if name == "my_walks":
        from rflow_tui.tui.screens.my_walks import MyWalksScreen

        return MyWalksScreen(ctx)
    from rflow_tui.tui.screens.proposals import ProposalsScreen

    return ProposalsScreen(ctx)
