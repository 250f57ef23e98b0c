"""Walk screen: the current node, answers as their literal labels, the transcript,
and notes that autosave. Every store or generator call runs in a worker."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Button, Footer, Header, Input, LoadingIndicator, Static, TextArea

from rflow_tui.domain.enums import WALKS_A_TREE
from rflow_tui.domain.walk_step import WalkStep
from rflow_tui.services import sessions as session_svc
from rflow_tui.services.errors import DatabaseError, ServiceError
from rflow_tui.tui.safe import clean, plain
from rflow_tui.tui.store_guard import StoreGuard

KIND_TITLES = {"question": "Question", "instruction": "Do this", "resolution": "Resolved", "escalate": "Escalate"}


def open_walk(app, ctx, walk) -> None:
    app.push_screen(WalkScreen(ctx, walk))


def notes_text(walk_notes: list | None) -> str:
    """The notes pane holds one text; stored as a one-item list (see ``notes_payload``)."""
    parts = []
    for note in walk_notes or []:
        parts.append(note.get("text", "") if isinstance(note, dict) else str(note))
    return "\n".join(parts)


def notes_payload(text: str) -> list[str]:
    return [text] if text.strip() else []


def transcript(steps: list[WalkStep]) -> Text:
    out = Text()
    for number, step in enumerate(steps, start=1):
        style = "dim strike" if step.undone else ""
        out.append(f"{number}. ", style="bold")
        out.append(clean(step.text, single_line=True), style=style)
        out.append("\n")
        out.append("   → ", style="dim")
        out.append(clean(step.answer_label or "done", single_line=True), style=style or "bold green")
        if step.undone:
            out.append("  (stepped back)", style="dim italic")
        out.append("\n")
        if step.l1_note:
            out.append("   note: ", style="dim")
            out.append(clean(step.l1_note), style="italic")
            out.append("\n")
    if not steps:
        out.append("No steps yet.", style="dim")
    return out


class _Unavailable:
    """Stands in for a generator that could not be built: a pending node still shows."""

    name = "unavailable"

    def __init__(self, why: str | None) -> None:
        self.why = why

    async def generate(self, context):
        from rflow_tui.ai.base import NoGeneratorError

        raise NoGeneratorError(f"The AI is unavailable: {self.why}")


class WalkScreen(StoreGuard, Screen):
    BINDINGS = [
        Binding("1,y", "answer('yes')", "Yes / first", show=False),
        Binding("2,n", "answer('no')", "No / second", show=False),
        Binding("enter", "acknowledge", "Acknowledge", show=False),
        Binding("r", "resolve", "Resolve"),
        Binding("e", "escalate", "Escalate"),
        Binding("s", "focus_notes", "Session notes"),
        Binding("escape", "leave", "Back"),
        Binding("c", "focus_step_note", "Step note", show=False),
        Binding("b", "step_back", "Step back", show=False),
        Binding("t", "retry", "Retry", show=False),
        Binding("x", "copy_transcript", "Copy transcript", show=False),
    ]

    def __init__(self, ctx, walk) -> None:
        super().__init__()
        self.ctx = ctx
        self.walk = walk
        self.node: dict[str, Any] | None = None
        self.busy = False
        self.failed: str | None = None
        self.resolve_draft: dict = {}
        self.escalate_draft: dict = {}
        self._autosave: Timer | None = None
        self._notes_dirty = False

    # --- layout -----------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            with Vertical(id="walk-main"):
                yield Static(id="ticket-line")
                yield Static(id="node-kind")
                yield Static(id="node-text")
                yield LoadingIndicator(id="walk-loading")
                yield Static(id="walk-error")
                yield Horizontal(id="answers")
                yield Input(placeholder="Note for this step (c), saved with your answer", id="step-note")
            with Vertical(id="walk-side"):
                yield Static("Transcript", id="transcript-title")
                with VerticalScroll(id="transcript"):
                    yield Static(id="transcript-body")
                yield Static("Session notes (s) · autosaved", id="notes-title")
                yield TextArea(clean(notes_text(self.walk.walk_notes)), id="session-notes", soft_wrap=True)
                yield Static("", id="notes-status")
        yield Footer()

    def on_mount(self) -> None:
        kind = {"flow": "Flow", "proposal": "Proposal", "adhoc": "Ad-hoc", "ai_build": "AI build"}[self.walk.session_kind]
        self.query_one("#ticket-line", Static).update(plain(f"{self.walk.ticket_id} · {kind} walk · session {self.walk.id}", single_line=True))
        self.query_one("#walk-error").display = False
        self._refresh_transcript()
        self.load_node()

    # --- node display -------------------------------------------------------------

    def _set_busy(self, busy: bool) -> None:
        self.busy = busy
        self.query_one("#walk-loading").display = busy
        for button in self.query("#answers Button"):
            button.disabled = busy

    async def _show_node(self, node: dict[str, Any] | None) -> None:
        self.node = node
        self.failed = None
        self.query_one("#walk-error").display = False
        self.query_one("#node-text").display = True
        kind_label = self.query_one("#node-kind", Static)
        text = self.query_one("#node-text", Static)
        answers = self.query_one("#answers", Horizontal)
        await answers.remove_children()
        if self.walk.session_kind == "adhoc":
            kind_label.update("Ad-hoc walk")
            text.update("No tree for this one: write what you try and find in the session notes, then resolve or escalate.")
            await answers.mount(Button("Resolve (r)", variant="success", id="do-resolve"), Button("Escalate (e)", variant="warning", id="do-escalate"))
            self.query_one("#session-notes").focus()
            return
        if node is None:
            kind_label.update("")
            text.update("This walk has no step to show. Resolve or escalate it.")
            await answers.mount(Button("Resolve (r)", variant="success", id="do-resolve"), Button("Escalate (e)", variant="warning", id="do-escalate"))
            return
        kind = node.get("type")
        rules_only = " · checked by rules only" if self.walk.session_kind == "ai_build" and self.ctx.judge_off else ""
        kind_label.update(KIND_TITLES.get(kind, kind or "") + rules_only)
        text.update(plain(node.get("text", "")))
        if kind == "question":
            await answers.mount(
                Button(plain(f"1  {node.get('yes_label') or 'Yes'}", single_line=True), variant="primary", id="answer-yes"),
                Button(plain(f"2  {node.get('no_label') or 'No'}", single_line=True), variant="primary", id="answer-no"),
            )
            self.call_after_refresh(lambda: self.query_one("#answer-yes").focus())
        elif kind == "instruction":
            await answers.mount(Button("Done · Enter", variant="primary", id="acknowledge"))
            self.call_after_refresh(lambda: self.query_one("#acknowledge").focus())
        else:
            first = ("do-resolve", "Resolve (r)", "success") if kind == "resolution" else ("do-escalate", "Escalate (e)", "warning")
            second = ("do-escalate", "Escalate (e)", "warning") if kind == "resolution" else ("do-resolve", "Resolve (r)", "success")
            await answers.mount(*(Button(label, variant=variant, id=bid) for bid, label, variant in (first, second)))

    async def _show_error(self, message: str) -> None:
        self.failed = message
        error = self.query_one("#walk-error", Static)
        error.update(plain(f"{message}\n\nt retry · e escalate · r resolve"))
        error.display = True
        self.query_one("#node-text").display = self.node is not None  # no empty box above the error
        answers = self.query_one("#answers", Horizontal)
        await answers.remove_children()
        await answers.mount(
            Button("Retry (t)", variant="primary", id="do-retry"),
            Button("Escalate (e)", variant="warning", id="do-escalate"),
            Button("Resolve (r)", id="do-resolve"),
        )
        self.call_after_refresh(lambda: self.query_one("#do-retry").focus())  # so t/e/r work at once

    def _refresh_transcript(self) -> None:
        self.query_one("#transcript-body", Static).update(transcript(self.walk.steps))
        self.query_one("#transcript", VerticalScroll).scroll_end(animate=False)

    async def _reload_walk(self) -> None:
        self.walk = await self.ctx.call(session_svc.get_session, session_id=self.walk.id)
        self._refresh_transcript()

    # --- loading and answering -------------------------------------------------------

    @work(exclusive=True, group="walk")
    async def load_node(self) -> None:
        await self._run(self._fetch_current)

    async def _fetch_current(self) -> dict | None:
        kind = self.walk.session_kind
        if kind == "ai_build":
            return await self._advance()
        if kind in ("flow", "proposal"):
            from rflow_tui.services.flows import current_flow_node

            return await self.ctx.call(current_flow_node, session_id=self.walk.id)
        return None

    async def _advance(self, **answer: Any) -> dict:
        generator = self.ctx.generator() or _Unavailable(self.ctx.generator_error)
        return await self.ctx.call(
            session_svc.advance_ai_build, session_id=self.walk.id, generator=generator, judge=self.ctx.step_judge(), **answer
        )

    async def _run(self, fetch) -> None:
        """Run one step in the worker: loading state on, errors shown, nothing typed lost."""
        from rflow_tui.ai.base import GenerationError

        self._set_busy(True)
        try:
            node = await fetch()
        except GenerationError as exc:
            await self._reload_walk()
            self._set_busy(False)
            await self._show_error(str(exc))
            return
        except DatabaseError as exc:  # nothing was recorded; the step note stays for the retry
            self._set_busy(False)
            await self._show_error(str(exc))
            return
        except ServiceError as exc:
            self._set_busy(False)
            self.notify(str(exc), severity="error", timeout=8, markup=False)
            return
        await self._reload_walk()
        self._set_busy(False)
        await self._show_node(node)

    def _answerable(self, kind: str) -> bool:
        return not self.busy and self.failed is None and self.node is not None and self.node.get("type") == kind

    def action_answer(self, answer: str) -> None:
        if self._answerable("question"):
            self.submit(answer)

    def action_acknowledge(self) -> None:
        if self._answerable("instruction"):
            self.submit(None)

    @work(exclusive=True, group="walk")
    async def submit(self, answer: str | None) -> None:
        note_input = self.query_one("#step-note", Input)
        note = note_input.value.strip() or None
        node_id = self.node["id"]

        async def fetch():
            if self.walk.session_kind == "ai_build":
                return await self._advance(node_id=node_id, answer=answer, note=note)
            from rflow_tui.services.flows import answer_flow_node

            return await self.ctx.call(answer_flow_node, session_id=self.walk.id, answer=answer, note=note, node_id=node_id)

        before = len(self.walk.walked_path or [])
        await self._run(fetch)
        if len(self.walk.walked_path or []) > before:
            note_input.value = ""  # the note went with the answer; cleared only once stored

    def action_retry(self) -> None:
        if self.failed is not None and not self.busy:
            self.load_node()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Step back exists only on a tree (flow, proposal): elsewhere it is neither offered nor listed."""
        if action == "step_back":
            return self.walk.session_kind in WALKS_A_TREE
        return True

    @work(exclusive=True, group="walk")
    async def action_step_back(self) -> None:
        if self.walk.session_kind not in WALKS_A_TREE or self.busy:
            return
        from rflow_tui.services.flows import step_back

        await self._run(lambda: self.ctx.call(step_back, session_id=self.walk.id))

    @on(Button.Pressed)
    def _button(self, event: Button.Pressed) -> None:
        actions = {
            "answer-yes": lambda: self.action_answer("yes"),
            "answer-no": lambda: self.action_answer("no"),
            "acknowledge": self.action_acknowledge,
            "do-resolve": self.action_resolve,
            "do-escalate": self.action_escalate,
            "do-retry": self.action_retry,
        }
        action = actions.get(event.button.id or "")
        if action:
            event.stop()
            action()

    @on(Input.Submitted, "#step-note")
    def _note_done(self) -> None:
        target = self.query("#answers Button")
        if target:
            target.first().focus()

    def action_focus_step_note(self) -> None:
        self.query_one("#step-note").focus()

    def action_focus_notes(self) -> None:
        """Into the notes with the cursor after the last word, ready to add a line."""
        notes = self.query_one("#session-notes", TextArea)
        notes.focus()
        notes.move_cursor(notes.document.end)

    # --- session notes: debounced autosave ---------------------------------------------

    @on(TextArea.Changed, "#session-notes")
    def _notes_changed(self) -> None:
        self._notes_dirty = True
        self.query_one("#notes-status", Static).update("Editing…")
        if self._autosave is not None:
            self._autosave.stop()
        self._autosave = self.set_timer(self.ctx.settings.ui.autosave_seconds, self.save_notes)

    @work(exclusive=True, group="notes")
    async def save_notes(self) -> None:
        await self._save_notes()

    async def flush_notes(self) -> bool:
        """Save the editor's text now; the app calls this before it quits.

        Unconditional: the Changed event of the last keystroke may not have arrived yet.
        """
        self._notes_dirty = True
        return await self._save_notes()

    async def _save_notes(self) -> bool:
        if not self._notes_dirty:
            return True
        text = self.query_one("#session-notes", TextArea).text
        status = self.query_one("#notes-status", Static)
        try:
            await self.ctx.call(session_svc.update_notes, session_id=self.walk.id, notes=notes_payload(text))
        except ServiceError as exc:
            status.update(plain(f"Not saved: {exc}"))
            status.add_class("error")
            if isinstance(exc, DatabaseError):  # the store is away, not the notes at fault: try again
                self._autosave = self.set_timer(max(self.ctx.settings.ui.autosave_seconds, 2.0), self.save_notes)
            return False
        if self.query_one("#session-notes", TextArea).text == text:
            self._notes_dirty = False
        status.remove_class("error")
        status.update("Saved")
        return True

    # --- endings ---------------------------------------------------------------------

    @work(exclusive=True, group="end")
    async def action_resolve(self) -> None:
        from rflow_tui.tui.screens.dialogs import ResolveDialog

        if self.busy:
            return
        result = await self.app.push_screen_wait(ResolveDialog(self.resolve_draft))
        if result is not None:
            await self._finish(session_svc.resolve, result, "resolved")

    @work(exclusive=True, group="end")
    async def action_escalate(self) -> None:
        from rflow_tui.tui.screens.dialogs import EscalateDialog

        if self.busy:
            return
        result = await self.app.push_screen_wait(EscalateDialog(self.escalate_draft))
        if result is not None:
            await self._finish(session_svc.escalate, result, "escalated")

    async def _finish(self, operation, fields: dict, done: str) -> None:
        if not await self._save_notes():
            self.notify(f"Session notes are not saved (see under them), so the walk is not {done} yet",
                        severity="error", markup=False)
            return
        try:
            await self.ctx.call(operation, session_id=self.walk.id, **fields)
        except ServiceError as exc:
            self.notify(str(exc), severity="error", timeout=8, markup=False)
            return
        self.notify(f"{self.walk.ticket_id} {done}", markup=False)
        self.dismiss()

    def action_leave(self) -> None:
        """Esc in a text field returns to the answers; Esc elsewhere goes back to the tickets."""
        if isinstance(self.focused, (Input, TextArea)):
            target = self.query("#answers Button")
            (target.first() if target else self.query_one("#answers")).focus()
            return
        self.leave()

    @work(exclusive=True, group="leave")
    async def leave(self) -> None:
        if await self._save_notes():
            self.dismiss()
        else:
            self.notify("Session notes are not saved (see under them): fix that, or copy them out, before leaving.",
                        severity="error", markup=False)

    @work(group="copy")
    async def action_copy_transcript(self) -> None:
        from rflow_tui.services.export import session_transcript, transcript_markdown

        from rflow_tui.tui.clipboard import copy_transcript

        data = await self.ctx.call(session_transcript, session_id=self.walk.id)
        self.notify(copy_transcript(self.app, transcript_markdown(data), self.walk.ticket_id, self.walk.id), markup=False)
