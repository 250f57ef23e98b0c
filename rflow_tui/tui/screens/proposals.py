"""Proposal review for engineers: read a captured walk as a tree, approve or reject it."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Footer, Header, Input, Static

from rflow_tui.flows.format import exits
from rflow_tui.services import proposals as proposal_svc
from rflow_tui.services.errors import ServiceError
from rflow_tui.tui.format import age
from rflow_tui.tui.safe import clean, plain
from rflow_tui.tui.store_guard import StoreGuard


def tree_text(doc: dict) -> Text:
    """The flow drawn as an indented tree from its start node, each branch under its label."""
    nodes = {n.get("id"): n for n in doc.get("nodes") or [] if isinstance(n, dict)}
    out = Text()
    seen: set = set()

    def draw(node_id, depth: int, via: str | None) -> None:
        pad = "  " * depth
        if via is not None:
            out.append(f"{pad}[{clean(via, single_line=True)}] ", style="bold cyan")
        node = nodes.get(node_id)
        if node is None:
            out.append(f"(missing node {clean(node_id)})\n", style="red")
            return
        kind = node.get("type", "?")
        out.append(f"{kind}: ", style="dim")
        out.append(clean(node.get("text", ""), single_line=True) + "\n")
        if node_id in seen:
            return
        seen.add(node_id)
        for _answer, label, target in exits(node):
            draw(target, depth + 1, label)

    draw(doc.get("start"), 0, None)
    return out


class RejectDialog(ModalScreen):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, draft: dict) -> None:
        super().__init__()
        self.draft = draft

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("Reject proposal", classes="dialog-title")
            yield Static("Reason (the flywheel learns from it)", classes="field-label")
            yield Input(self.draft.get("reason", ""), id="reject-reason")
            yield Static("", classes="error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Reject", variant="error", id="submit")
                yield Button("Cancel (Esc)", id="cancel")

    @on(Input.Submitted)
    @on(Button.Pressed, "#submit")
    def _submit(self) -> None:
        reason = self.query_one(Input).value
        self.draft["reason"] = reason
        if not reason.strip():
            self.query_one(".error", Static).update("Give a reason.")
            return
        self.dismiss(reason.strip())

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.draft["reason"] = self.query_one(Input).value
        self.dismiss(None)


class ApproveDialog(ModalScreen):
    """Approving publishes a flow every tech will walk: one deliberate Enter, not a stray key."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str) -> None:
        super().__init__()
        self.proposal_title = title

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("Approve proposal", classes="dialog-title")
            yield Static(plain(f"Publish “{self.proposal_title}” as a flow every tech can walk?"))
            with Horizontal(classes="dialog-buttons"):
                yield Button("Approve (Enter)", variant="success", id="submit")
                yield Button("Cancel (Esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#submit", Button).focus()

    @on(Button.Pressed, "#submit")
    def _approve(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)


class ProposalsScreen(StoreGuard, Screen):
    BINDINGS = [
        Binding("a", "approve", "Approve"),
        Binding("j", "reject", "Reject"),
        Binding("f5", "refresh", "Refresh"),
    ]

    def __init__(self, ctx) -> None:
        super().__init__()
        self.ctx = ctx
        self.rows: list = []
        self.reject_drafts: dict[int, dict] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            table: DataTable[Any] = DataTable(id="proposal-list", cursor_type="row", zebra_stripes=True)
            # Fits 120 columns whole; the source shows in the detail pane.
            for label, width in (("#", 4), ("Title", 30), ("Outcome", 9), ("Ticket", 10), ("Age", 5)):
                table.add_column(label, width=width)
            yield table
            with VerticalScroll(id="proposal-detail"):
                yield Static("No proposal selected.", id="proposal-body")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_list()

    def action_refresh(self) -> None:
        self.refresh_list()

    @work(exclusive=True, group="proposals")
    async def refresh_list(self) -> None:
        self.rows = await self.ctx.call(proposal_svc.list_pending)
        table = self.query_one(DataTable)
        table.clear()
        for p in self.rows:
            table.add_row(
                str(p.id),
                plain(p.title, single_line=True),
                "helpful" if p.validated_by_outcome else "unproven",
                plain(p.ticket_id or "-", single_line=True),
                age(p.created_at),
            )
        self.title = f"Proposals · {len(self.rows)} pending"
        if not self.rows:
            self.query_one("#proposal-body", Static).update("No pending proposals. Helpful AI walks land here.")

    def _current(self):
        table = self.query_one(DataTable)
        if not self.rows or table.cursor_row >= len(self.rows):
            return None
        return self.rows[table.cursor_row]

    @on(DataTable.RowHighlighted)
    @work(exclusive=True, group="detail")
    async def _show(self) -> None:
        proposal = self._current()
        if proposal is None:
            return
        walk = await self.ctx.call(proposal_svc.source_session, proposal=proposal)
        out = Text()
        out.append(clean(proposal.title, single_line=True) + "\n", style="bold")
        out.append(f"Category: {clean(proposal.category) or '-'} · source: {clean(proposal.source)}\n", style="dim")
        if walk is not None:
            out.append(
                f"From walk {walk.id} on {clean(walk.ticket_id)}: {walk.status}, "
                f"{'helpful' if walk.helpful else 'not marked helpful'}\n",
                style="dim",
            )
            if walk.resolution_notes:
                out.append("Resolution: ", style="dim")
                out.append(clean(walk.resolution_notes) + "\n")
        out.append("\n")
        out.append_text(tree_text(proposal_svc.proposal_tree(proposal)))
        out.append("\na approve · j reject", style="dim")
        self.query_one("#proposal-body", Static).update(out)

    @work(exclusive=True, group="review")
    async def action_approve(self) -> None:
        proposal = self._current()
        if proposal is None or not await self.app.push_screen_wait(ApproveDialog(proposal.title)):
            return
        try:
            flow = await self.ctx.call(proposal_svc.approve, proposal_id=proposal.id)
        except ServiceError as exc:
            self.notify(str(exc), severity="error", timeout=8, markup=False)
            return
        self.notify(f"Approved: now flow “{clean(flow.title, single_line=True)}” v{flow.version}", markup=False)
        self.refresh_list()

    @work(exclusive=True, group="review")
    async def action_reject(self) -> None:
        proposal = self._current()
        if proposal is None:
            return
        draft = self.reject_drafts.setdefault(proposal.id, {})
        reason = await self.app.push_screen_wait(RejectDialog(draft))
        if reason is None:
            return
        try:
            await self.ctx.call(proposal_svc.reject, proposal_id=proposal.id, reason=reason)
        except ServiceError as exc:
            self.notify(str(exc), severity="error", timeout=8, markup=False)
            return
        self.notify("Proposal rejected", markup=False)
        self.refresh_list()
