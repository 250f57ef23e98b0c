"""Escalations for engineers: newest first, live, with each one's ticket, transcript and
notes, and the work on it: who is on it, comments, an outcome."""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.coordinate import Coordinate
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from rflow_tui.domain.enums import EscalationOutcome, ReasonCategory, WalkStatus
from rflow_tui.domain.walk_names import NO_WALK, escalated_without_walk, kind_name
from rflow_tui.services.feed import FeedBatch
from rflow_tui.services.live_feed import FeedStatus
from rflow_tui.services.users import list_users
from rflow_tui.tui.format import age, since
from rflow_tui.tui.safe import clean, plain
from rflow_tui.tui.store_guard import StoreGuard
from rflow_tui.tui.widgets import TicketHeader, Transcript
from rflow_tui.tui.widgets.session_notes import notes_text

AGE_TICK = 1.0  # ages show seconds under a minute
FILTERS = ("all", "unclaimed", "mine")
FILTER_NAMES = {"all": "All", "unclaimed": "Unclaimed only", "mine": "Mine only"}  # short: it fits at 80 columns


def category_name(code: str | None) -> str:
    """A reason category as a person reads it (a code no longer known shows as stored)."""
    return ReasonCategory.short_label_for(code) or code or ""


def walk_context(walk) -> str:
    """What the ticket header says about the walk: its kind and session."""
    if escalated_without_walk(walk):
        return f"{NO_WALK} · session {walk.id}"
    return f"{kind_name(walk)} walk · session {walk.id}"


def summary(walk, tech: str) -> Text:
    out = Text()
    how = NO_WALK if escalated_without_walk(walk) else "Escalated"
    out.append(clean(f"{how} by {tech} · {since(walk.resolved_at)}", single_line=True) + "\n", style="bold")
    out.append("Category: ", style="dim")
    out.append(
        clean(ReasonCategory.label_for(walk.escalation_reason_category) or walk.escalation_reason_category) + "\n"
    )
    if walk.problem_text:
        out.append("Problem: ", style="dim")
        out.append(clean(walk.problem_text) + "\n")
    out.append("Reason: ", style="dim")
    out.append(clean(walk.escalation_reason))
    return out


def work_state(walk, names: dict) -> Text:
    """Who is on it, or how it ended: the line every engineer reads before touching it."""
    if walk.closed_at is not None:
        out = Text("✓ Closed", style="bold green")
        outcome = EscalationOutcome.label_for(walk.outcome) or walk.outcome or ""
        out.append(clean(f" · {outcome} · by {names.get(walk.closed_by_user_id, '?')} · {since(walk.closed_at)}"))
        out.append("\n")
        out.append(clean(walk.outcome_notes or ""), style="italic")
        return out
    if walk.claimed_by_user_id is None:
        return Text("Nobody is on it yet · c claims it", style="bold yellow")
    who = names.get(walk.claimed_by_user_id, "?")
    return Text(clean(f"On it: {who} · since {since(walk.claimed_at)}", single_line=True), style="bold")


ALERT_STYLES = {"sent": "green", "pending": "yellow", "failed": "bold red", "skipped": "dim"}
ALERT_MARKS = {"sent": "✉ ", "pending": "… ", "failed": "✗ ", "skipped": "· "}


def alert_text(line: tuple[str, str] | None) -> Text:
    """Whether the escalation's alert went out (``alert_outbox.status_line``); the reason is
    a server's or the desk's words: plain text."""
    if line is None:
        return Text()
    state, words = line
    return Text(ALERT_MARKS.get(state, "") + clean(words, single_line=True), style=ALERT_STYLES.get(state, ""))


def on_it(walk, names: dict) -> Text:
    if walk.closed_at is not None:
        return Text("✓ closed", style="green")
    if walk.claimed_by_user_id is None:
        return Text("-", style="dim")
    return plain(names.get(walk.claimed_by_user_id, "?"), single_line=True)


def comments_text(comments, names: dict) -> Text:
    out = Text()
    for comment in comments:
        out.append(clean(f"{names.get(comment.author_user_id, '?')} · {since(comment.created_at)}", single_line=True))
        out.append("\n")
        out.append(clean(comment.body) + "\n")
    if not comments:
        out.append("none · m adds one", style="dim")
    return out


class EscalationsScreen(StoreGuard, Screen):
    BINDINGS = [
        Binding("c", "claim", "Claim"),
        Binding("m", "comment", "Comment"),
        Binding("d", "close_escalation", "Close"),
        Binding("f", "cycle_filter", "Filter"),
        Binding("n", "inbox", "Inbox"),
        Binding("o", "reopen", "Reopen", show=False),
        Binding("x", "copy_transcript", "Copy transcript", show=False),
        Binding("f5", "refresh", "Refresh", show=False),
    ]

    def __init__(self, ctx) -> None:
        super().__init__()
        self.ctx = ctx
        self.rows: list = []
        self.names: dict[int | None, str] = {}
        self.feed_status: FeedStatus | None = None
        self.filter = "all"
        self.comments: list = []
        self.drafts: dict[tuple[int, str], dict] = {}  # (walk id, "comment" / "close"): what was typed
        self.known: set[int] | None = None  # ids listed so far; None until the first load
        self.arrived: set[int] = set()  # came in while the screen was open, not looked at yet
        self.placed: str | None = None  # the row the list itself put the cursor on (not the engineer)
        self.last_bell = -float("inf")
        self.ages: dict[int, str] = {}
        self.unread = 0

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            with Vertical(id="escalation-side"):
                yield Static(id="escalation-status")
                table: DataTable[Any] = DataTable(id="escalation-list", cursor_type="row", zebra_stripes=True)
                # Reason last: the one column that may be cut on a narrow terminal (the pane shows it whole).
                # "On it" early: at 80 columns every engineer still sees who has each one.
                for label, key, width in (
                    ("Ticket", "ticket", 10),
                    ("Age", "age", 5),
                    ("On it", "on_it", 12),
                    ("Tech", "tech", 12),
                    ("Category", "category", 11),
                    ("Reason", "reason", 18),
                ):
                    table.add_column(label, key=key, width=width)
                yield table
            with VerticalScroll(id="escalation-detail", classes="-empty"):
                yield TicketHeader("", "", id="escalation-ticket")
                yield Static("Select an escalation to see its ticket and transcript.", id="escalation-body")
                yield Static(id="escalation-work")
                yield Static(id="escalation-alert")
                yield Static("Transcript", classes="section-title")
                yield Transcript(id="escalation-transcript")
                yield Static("Session notes", classes="section-title")
                yield Static(id="escalation-notes")
                yield Static("Comments", classes="section-title")
                yield Static(id="escalation-comments")
        yield Footer()

    def on_mount(self) -> None:
        from rflow_tui.services.live_feed import FeedTiming, LiveFeed

        self.query_one(DataTable).loading = True
        self._show_status()
        timing = FeedTiming(fallback_seconds=self.ctx.settings.ui.escalations_poll_seconds)
        self.feed = LiveFeed(self.ctx, deliver=self.show_batch, on_status=self.show_feed_status, timing=timing)
        self.run_worker(self._follow, group="escalations", exclusive=True)
        self.set_interval(AGE_TICK, self._tick_ages)
        self.count_unread()

    async def _follow(self) -> None:
        if not self.names:
            users = await self.feed.until_answered(lambda: self.ctx.call(list_users))
            self.names = {u.id: u.name or u.email for u in users}
        await self.feed.run()

    def action_refresh(self) -> None:
        self.feed.refresh()

    def app_closing(self) -> bool:
        """The app is shutting down: its header may be half taken down and must not be asked to redraw."""
        return bool(self.app._exit) or not (self.app.is_running and self.is_attached)

    def show_batch(self, batch: FeedBatch) -> None:
        """The feed's delivery: new escalations on top, changed ones in place, any that left the list gone."""
        if self.app_closing():
            return
        self.query_one(DataTable).loading = False
        known = {w.id for w in self.rows}
        fresh = {w.id: w for w in batch.walks}
        arrived = [w for w in batch.walks if batch.full or w.id not in known]
        updated = [] if batch.full else [fresh.get(w.id, w) for w in self.rows]
        self.rows = [w for w in arrived + updated if w.status == WalkStatus.ESCALATED]
        self._fill_table()
        self._show_title()
        current = self._current()
        if current is not None and current.id in fresh:  # someone else worked the one on show
            self._show()
            self.load_detail(current.id)
        new = 0 if batch.full else sum(1 for w in arrived if w.status == WalkStatus.ESCALATED)
        if new:
            self.notify(f"{new} new escalation(s)", markup=False)

    def show_feed_status(self, status: FeedStatus) -> None:
        """The subtitle says whether changes arrive live, after a reconnect, or only by polling."""
        if self.app_closing():
            return
        if status == FeedStatus.LIVE and self.feed_status == FeedStatus.RECONNECTING:
            self.notify("Reconnected to the database", markup=False)
        if status == FeedStatus.RECONNECTING:
            self.query_one(DataTable).loading = False
            self.notify(
                "Cannot reach the database · the list catches up when it is back",
                severity="warning",
                timeout=8,
                markup=False,
            )
        self.feed_status = status
        self.sub_title = f"{self.app.sub_title} · {status}"

    def _show_title(self) -> None:
        self.title = f"Escalations · {len(self.rows)}"

    # --- the list -------------------------------------------------------------------

    def _shown(self, walk) -> bool:
        if self.filter == "all":
            return True
        if walk.closed_at is not None:
            return False
        if self.filter == "unclaimed":
            return walk.claimed_by_user_id is None
        return walk.claimed_by_user_id == self.ctx.user.id

    def _cells(self, walk) -> tuple:
        ticket = plain(walk.ticket_id, single_line=True)
        if walk.id in self.arrived:  # new since the screen opened: marked until looked at
            ticket = Text("● ", style="bold yellow") + plain(walk.ticket_id, single_line=True, style="bold")
        self.ages[walk.id] = age(walk.resolved_at)
        return (
            ticket,
            self.ages[walk.id],
            on_it(walk, self.names),
            plain(self.names.get(walk.created_by_user_id, "?"), single_line=True),
            plain(category_name(walk.escalation_reason_category), single_line=True),
            plain(walk.escalation_reason or "", single_line=True),
        )

    def _fill_table(self) -> None:
        """The rows the filter lets through, the selection kept where it can be."""
        self._note_arrivals()
        table = self.query_one(DataTable)
        selected = self.rows_key_at_cursor()
        table.clear()
        for walk in self.rows:
            if self._shown(walk):
                table.add_row(*self._cells(walk), key=str(walk.id))
        if selected is not None and selected in {row.value for row in table.rows}:
            table.move_cursor(row=table.get_row_index(selected))
        self.placed = self.rows_key_at_cursor()
        self._show_status()
        if not table.row_count:
            self.query_one("#escalation-detail").add_class("-empty")
            self.query_one("#escalation-body", Static).update(
                Text(
                    f"No escalations to show ({FILTER_NAMES[self.filter].lower()}) · f changes the filter", style="dim"
                )
            )

    def _note_arrivals(self) -> None:
        """Escalations listed for the first time since the screen opened are arrivals:
        marked in the list, counted in the inbox, and (when configured) a bell."""
        ids = {w.id for w in self.rows}
        if self.known is not None and (new := ids - self.known):
            self.arrived |= new
            self.count_unread()
            self._ring()
        self.known = (self.known or set()) | ids

    def _ring(self) -> None:
        ui = self.ctx.settings.ui
        if ui.escalation_bell and time.monotonic() - self.last_bell >= ui.escalation_bell_gap_seconds:
            self.last_bell = time.monotonic()
            self.app.bell()

    def _tick_ages(self) -> None:
        """Ages move on while the screen is open (only the cells whose text changed are redrawn)."""
        table = self.query_one(DataTable)
        shown = {row.value for row in table.rows}
        for walk in self.rows:
            now = age(walk.resolved_at)
            if str(walk.id) in shown and self.ages.get(walk.id) != now:
                self.ages[walk.id] = now
                table.update_cell(str(walk.id), "age", now)

    def _show_status(self) -> None:
        open_ = [w for w in self.rows if w.closed_at is None]
        unclaimed = sum(1 for w in open_ if w.claimed_by_user_id is None)
        mine = sum(1 for w in open_ if w.claimed_by_user_id == self.ctx.user.id)
        status = Text(f"✉ {self.unread} · ", style="bold yellow") if self.unread else Text()
        status.append(f"{FILTER_NAMES[self.filter]} · {len(open_)} open, {unclaimed} unclaimed, {mine} yours")
        self.query_one("#escalation-status", Static).update(status)

    def action_cycle_filter(self) -> None:
        self.filter = FILTERS[(FILTERS.index(self.filter) + 1) % len(FILTERS)]
        self._fill_table()

    def rows_key_at_cursor(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value

    def _current(self):
        key = self.rows_key_at_cursor()
        return next((w for w in self.rows if str(w.id) == key), None)

    def _seen(self, walk) -> None:
        if walk.id in self.arrived:
            self.arrived.discard(walk.id)
            self.query_one(DataTable).update_cell(str(walk.id), "ticket", plain(walk.ticket_id, single_line=True))

    def _replace(self, walk) -> None:
        """One escalation changed (by this engineer): its row and the pane show it now."""
        self.arrived.discard(walk.id)
        self.rows = [walk if w.id == walk.id else w for w in self.rows]
        self._fill_table()
        self._show()
        self.load_detail(walk.id)

    # --- the pane -------------------------------------------------------------------

    @on(DataTable.RowHighlighted)
    def _show(self) -> None:
        walk = self._current()
        if walk is None:
            return
        if str(walk.id) != self.placed:  # the engineer moved here: an arrival is seen
            self.placed = None
            self._seen(walk)
        self.query_one("#escalation-body", Static).update(summary(walk, self.names.get(walk.created_by_user_id, "?")))
        self.query_one("#escalation-work", Static).update(work_state(walk, self.names))
        notes = notes_text(walk.walk_notes)
        self.query_one("#escalation-notes", Static).update(plain(notes) if notes else Text("none", style="dim"))
        self.query_one("#escalation-detail").remove_class("-empty")
        header = self.query_one(TicketHeader)
        if header.ticket_id != walk.ticket_id or header.context != walk_context(walk):
            header.retarget(walk.ticket_id, walk_context(walk))
            self.query_one("#escalation-comments", Static).update(Text("…", style="dim"))
            self.query_one(Transcript).show(None)  # its steps come with the detail
            self.load_detail(walk.id)

    @work(exclusive=True, group="detail")
    async def load_detail(self, session_id: int) -> None:
        """The selected escalation's ticket (subject, requester, description) and comments."""
        from rflow_tui.services.alert_outbox import status_line
        from rflow_tui.services.escalations import escalation_detail

        detail = await self.ctx.call(escalation_detail, session_id=session_id)
        current = self._current()
        if current is None or current.id != session_id:  # the selection moved on meanwhile
            return
        self.query_one(TicketHeader).show_ticket(detail.ticket)
        self.query_one(Transcript).show(detail.steps)
        self.query_one("#escalation-comments", Static).update(comments_text(detail.comments, self.names))
        alert = status_line(detail.alert, configured=bool(self.ctx.settings.alerts.urls))
        shown = self.query_one("#escalation-alert", Static)
        shown.update(alert_text(alert))
        shown.display = alert is not None

    # --- working it -------------------------------------------------------------------

    def _need_current(self):
        walk = self._current()
        if walk is None:
            self.notify("Select an escalation first", severity="warning", markup=False)
        return walk

    def action_claim(self) -> None:
        """Claim it; on one's own claim, let it go; on someone else's, offer to take it over."""
        walk = self._need_current()
        if walk is None:
            return
        if walk.claimed_by_user_id is not None and walk.claimed_by_user_id != self.ctx.user.id:
            self._offer_take_over(walk)
        else:
            self._claim(walk.id, release=walk.claimed_by_user_id == self.ctx.user.id)

    def _offer_take_over(self, walk) -> None:
        from rflow_tui.tui.screens.escalation_dialogs import TakeOverDialog

        who = self.names.get(walk.claimed_by_user_id, "someone")
        question = f"{who} is on {walk.ticket_id} since {since(walk.claimed_at)}. Take it over from them?"

        def chosen(yes: bool | None) -> None:
            if yes:
                self._claim(walk.id, take_over=True)

        self.app.push_screen(TakeOverDialog(question), chosen)

    @work(group="work")
    async def _claim(self, session_id: int, *, release: bool = False, take_over: bool = False) -> None:
        from rflow_tui.services import escalations

        if release:
            walk = await self.ctx.call(escalations.release, session_id=session_id)
            self.notify(f"You let {walk.ticket_id} go: it is unclaimed", markup=False)
        else:
            try:
                walk = await self.ctx.call(escalations.claim, session_id=session_id, take_over=take_over)
            except escalations.ClaimedByOther as exc:
                self.notify(str(exc), severity="warning", timeout=8, markup=False)
                self.load_detail(session_id)
                return
            self.notify(f"You are on {walk.ticket_id}", markup=False)
        self._replace(walk)

    def action_comment(self) -> None:
        walk = self._need_current()
        if walk is None:
            return
        from rflow_tui.tui.screens.escalation_dialogs import CommentDialog

        draft = self.drafts.setdefault((walk.id, "comment"), {})

        def written(body: str | None) -> None:
            if body:
                self._comment(walk.id, body)

        self.app.push_screen(CommentDialog(draft, ticket_id=walk.ticket_id), written)

    @work(group="work")
    async def _comment(self, session_id: int, body: str) -> None:
        from rflow_tui.services.escalations import add_comment

        await self.ctx.call(add_comment, session_id=session_id, body=body)
        self.drafts.pop((session_id, "comment"), None)  # saved: the next comment starts empty
        self.load_detail(session_id)

    def action_close_escalation(self) -> None:
        walk = self._need_current()
        if walk is None:
            return
        if walk.closed_at is not None:
            self.notify(f"{walk.ticket_id} is closed already · o reopens it", severity="warning", markup=False)
            return
        from rflow_tui.tui.screens.escalation_dialogs import CloseDialog

        draft = self.drafts.setdefault((walk.id, "close"), {})

        def chosen(result: dict | None) -> None:
            if result:
                self._close(walk.id, result)

        self.app.push_screen(CloseDialog(draft, ticket_id=walk.ticket_id), chosen)

    @work(group="work")
    async def _close(self, session_id: int, result: dict) -> None:
        from rflow_tui.services.escalations import close

        walk = await self.ctx.call(close, session_id=session_id, outcome=result["outcome"], notes=result["notes"])
        self.drafts.pop((session_id, "close"), None)
        self.notify(f"{walk.ticket_id} closed · {EscalationOutcome(walk.outcome).label}", markup=False)
        self._replace(walk)

    def action_reopen(self) -> None:
        walk = self._need_current()
        if walk is None:
            return
        if walk.closed_at is None:
            self.notify(f"{walk.ticket_id} is open: nothing to reopen", severity="warning", markup=False)
            return
        self._reopen(walk.id)

    @work(group="work")
    async def _reopen(self, session_id: int) -> None:
        from rflow_tui.services.escalations import reopen

        walk = await self.ctx.call(reopen, session_id=session_id)
        self.notify(f"{walk.ticket_id} is open again", markup=False)
        self._replace(walk)

    # --- the inbox ----------------------------------------------------------------------

    @work(exclusive=True, group="unread")
    async def count_unread(self) -> None:
        from rflow_tui.services.notifications import unread_count

        self.unread = await self.ctx.call(unread_count)
        self._show_status()

    def action_inbox(self) -> None:
        from rflow_tui.tui.screens.inbox import InboxScreen

        self.app.push_screen(InboxScreen(self.ctx), self._opened_from_inbox)

    def _opened_from_inbox(self, session_id: int | None) -> None:
        self.count_unread()
        if session_id is None:
            return
        table = self.query_one(DataTable)
        if str(session_id) not in {row.value for row in table.rows} and self.filter != "all":
            self.filter = "all"  # the one asked for is hidden by the filter: show everything
            self._fill_table()
        if str(session_id) in {row.value for row in table.rows}:
            table.move_cursor(row=table.get_row_index(str(session_id)))
            table.focus()
        else:
            self.notify("That escalation is no longer in the list (F5 reloads it)", severity="warning", markup=False)

    @work(group="copy")
    async def action_copy_transcript(self) -> None:
        from rflow_tui.services.export import transcript_markdown
        from rflow_tui.services.walks.reads import read_transcript

        walk = self._current()
        if walk is None:
            return
        from rflow_tui.tui.clipboard import copy_transcript

        data = await self.ctx.call(read_transcript, session_id=walk.id)
        self.notify(copy_transcript(self.app, transcript_markdown(data), walk.ticket_id, walk.id), markup=False)
