"""Walk screen: the ticket, the current step with its answers, the transcript and the
session notes, each a widget; every store or generator call runs in a worker."""

from __future__ import annotations

import asyncio
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Static, TextArea

from rflow_tui.domain.enums import WALK_KIND_NAMES, WALKS_A_TREE, NodeType, WalkKind
from rflow_tui.domain.walk_step import WalkStep, live_steps
from rflow_tui.flows.format import answer_labels
from rflow_tui.services.errors import DatabaseError, ServiceError, StaleWalk
from rflow_tui.services.walks import ai_steps
from rflow_tui.services.walks import endings as walk_endings
from rflow_tui.services.walks import reads as walk_reads
from rflow_tui.services.walks import steps as walk_steps
from rflow_tui.tui.messages import TicketChosen, WalkEnded
from rflow_tui.tui.safe import plain
from rflow_tui.tui.store_guard import StoreGuard
from rflow_tui.tui.widgets import AnswerBar, NodeCard, SessionNotes, StepNote, TicketHeader, Transcript


def open_walk(app, ctx, walk) -> None:
    app.push_screen(WalkScreen(ctx, walk))


class _Unavailable:
    """Stands in for a generator that could not be built: a pending node still shows."""

    name = "unavailable"

    def __init__(self, why: str | None) -> None:
        self.why = why

    async def generate(self, context):
        from rflow_tui.ai.errors import NoGeneratorError

        raise NoGeneratorError(f"The AI is unavailable: {self.why}")


class Pane(VerticalScroll, can_focus=False):
    """Scrolls with the mouse (and to whatever takes the focus); never takes the focus
    itself, so the answer keys keep working."""


class WalkScreen(StoreGuard, Screen):
    AUTO_FOCUS = "AnswerBar"
    BINDINGS = [
        Binding("r", "resolve", "Resolve"),
        Binding("e", "escalate", "Escalate"),
        Binding("a", "abandon", "Abandon", show=False),
        Binding("s", "focus_notes", "Session notes"),
        Binding("escape", "leave", "Back"),
        Binding("c", "focus_step_note", "Step note", show=False),
        Binding("b", "step_back", "Step back", show=False),
        Binding("t", "retry", "Retry", show=False),
        Binding("i", "toggle_ticket", "Ticket details", show=False),
        Binding("h", "toggle_help", "Step help", show=False),
        Binding("v", "show_map", "Flow map", show=False),
        Binding("x", "copy_transcript", "Copy transcript", show=False),
    ]

    def __init__(self, ctx, walk) -> None:
        super().__init__()
        self.ctx = ctx
        self.walk = walk
        self.node: dict[str, Any] | None = None
        self.busy = False
        self.failed: str | None = None
        self.generation: asyncio.Future[Any] | None = None  # the AI writing the next step (Esc stops it)
        self._prefetcher: Any = None  # ai.prefetch.Prefetcher, made on the first AI step that may use it
        self._meter: Any = None  # ai.usage.Meter: what this walk's model calls cost since the last node served
        self._storing: asyncio.Task[Any] | None = None  # a prefetch hit's answer and node being stored (on screen)
        self._stored_walk: Any = None  # (walk, steps) as the last store call left them: no second read to show them
        self.steps: list[WalkStep] | None = None if walk.step_count else []  # None: not read yet
        self.resolve_draft: dict = {}
        self.escalate_draft: dict = {}
        self.abandon_draft: dict = {}

    # --- layout -----------------------------------------------------------------

    def compose(self) -> ComposeResult:
        kind = WALK_KIND_NAMES.get(self.walk.session_kind, self.walk.session_kind)
        yield Header()
        with Horizontal():
            with Pane(id="walk-main"):  # on a short terminal the step note scrolls into view
                yield TicketHeader(self.walk.ticket_id, f"{kind} walk · session {self.walk.id}", id="ticket")
                yield NodeCard(id="node")
                yield AnswerBar(id="answers")
                yield Static("", id="withheld")  # what the AI was not shown of this ticket, when anything
                yield StepNote(
                    self.walk.step_note_draft, save=self._store_draft, delay=self.ctx.settings.ui.autosave_seconds
                )
            with Vertical(id="walk-side"):
                yield Static("Transcript", id="transcript-title")
                with Pane(id="transcript"):
                    yield Transcript(self.steps, id="transcript-body")
                yield SessionNotes(
                    self.walk.walk_notes, save=self._store_notes, delay=self.ctx.settings.ui.autosave_seconds
                )
        yield Footer()

    @property
    def card(self) -> NodeCard:
        return self.query_one(NodeCard)

    @property
    def answers(self) -> AnswerBar:
        return self.query_one(AnswerBar)

    @property
    def notes(self) -> SessionNotes:
        return self.query_one(SessionNotes)

    def on_mount(self) -> None:
        if self.walk.session_kind == WalkKind.ADHOC:  # the notes are the whole walk: they have the focus from the start
            self.notes.focus_editor()
        self._refresh_transcript()
        self.load_ticket()
        self.load_node()

    @work(group="ticket")
    async def load_ticket(self) -> None:
        from rflow_tui.services.tickets import ticket_of

        ticket = await self.ctx.call(ticket_of, ticket_id=self.walk.ticket_id)
        self.query_one(TicketHeader).show_ticket(ticket)

    @work(group="map")
    async def action_show_map(self) -> None:
        """The flow as a tree, the path walked and the current node marked (flows and proposals)."""
        if self.walk.session_kind not in WALKS_A_TREE:
            self.notify("Only a flow or a proposal has a map: this walk is built as it goes.", timeout=4)
            return
        from rflow_tui.services.walks.flow_steps import walk_document
        from rflow_tui.tui.screens.flow_map import FlowMapScreen

        doc = await self.ctx.call(walk_document, session_id=self.walk.id)
        walked = [step.node_id for step in live_steps(self.steps or [])]
        here = self.node.get("id") if self.node else None
        title = f"Map · {doc.get('title') or 'this walk'} · {len(walked)} step(s) walked"
        await self.app.push_screen(FlowMapScreen(title, doc, walked, here))

    def action_toggle_help(self) -> None:
        if not self.card.toggle_more():
            self.notify("This step has no help from its author.", timeout=3)

    def action_toggle_ticket(self) -> None:
        self.query_one(TicketHeader).toggle()

    # --- states: loading, a node, an error ------------------------------------------

    def _settle_focus(self) -> None:
        """After every change of state the single keys must work: the answers take the
        focus, unless the tech is typing in a note (Esc brings them back). An ad-hoc walk's
        notes keep the focus they were given (Textual applies a focus later, so a settle that
        ran before it would otherwise take the keys away from the notes and give "e" to escalate)."""
        if self.walk.session_kind == WalkKind.ADHOC:
            if self.focused is None:
                self.notes.focus_editor()
        elif not isinstance(self.focused, (Input, TextArea)):
            self.answers.focus()

    def _set_busy(self, busy: bool) -> None:
        self.busy = busy
        self.card.set_loading(busy)
        self.answers.busy = busy
        self.refresh_bindings()
        self._settle_focus()

    async def _show_node(self, node: dict[str, Any] | None) -> None:
        self.node = node
        self.failed = None
        if self.walk.session_kind == WalkKind.ADHOC:
            self.card.show_message(
                "Ad-hoc walk",
                "No tree for this one: write what you try and find in the session notes, then resolve or escalate.",
                "s session notes · Esc back to the keys · r resolve · e escalate",
            )
            await self.answers.offer_endings()
            self._settle_focus()  # the notes have had the focus since the mount, unless the tech moved it
            return
        if node is None:
            self.card.show_message(
                "", "This walk has no step to show. Resolve or escalate it.", "r resolve · e escalate"
            )
            await self.answers.offer_endings()
            self._settle_focus()
            return
        self.card.show_node(node, note=self._rules_only())
        if self.walk.session_kind == WalkKind.AI_BUILD:
            self.show_withheld()
        kind = node.get("type")
        if kind == NodeType.QUESTION:
            await self.answers.ask(node.get("yes_label") or "Yes", node.get("no_label") or "No")
        elif kind == NodeType.CHOICE:
            await self.answers.choose(answer_labels(node))
        elif kind == NodeType.INSTRUCTION:
            await self.answers.instruct()
        else:
            await self.answers.offer_endings(escalate_first=kind == NodeType.ESCALATE)
        self._settle_focus()

    @work(exclusive=True, group="withheld")
    async def show_withheld(self) -> None:
        """Tell the tech what was withheld from the AI (a password the user typed, an e-mail address)."""
        from rflow_tui.services.privacy import withheld_from_ai

        lines = await self.ctx.call(
            withheld_from_ai, session_id=self.walk.id, privacy=self.ctx.settings.privacy.policy()
        )
        line = self.query_one("#withheld", Static)
        line.update(plain(" · ".join(lines)) if lines else "")
        line.display = bool(lines)

    def _rules_only(self) -> str:
        """An AI step on a desk with the safety judge off says it was checked by the rules alone."""
        return "checked by rules only" if self.walk.session_kind == WalkKind.AI_BUILD and self.ctx.judge_off else ""

    async def _show_error(self, message: str, *, retry_after: float | None = None) -> None:
        self.failed = message
        self.card.show_error(message, retry_after=retry_after)
        await self.answers.offer_retry()
        self._settle_focus()

    def _refresh_transcript(self) -> None:
        self.query_one(Transcript).show(self.steps)
        self.query_one("#transcript", VerticalScroll).scroll_end(animate=False)

    async def _reload_walk(self) -> None:
        self.walk, self.steps = await self.ctx.call(walk_reads.walk_with_steps, session_id=self.walk.id)
        self._refresh_transcript()

    # --- loading and answering -------------------------------------------------------

    @work(exclusive=True, group="walk")
    async def load_node(self) -> None:
        await self._run(self._fetch_current)

    async def _fetch_current(self) -> dict | None:
        kind = self.walk.session_kind
        if kind == WalkKind.AI_BUILD:
            return await self._advance()
        if kind in WALKS_A_TREE:
            from rflow_tui.services.walks.flow_steps import current_flow_node

            return await self.ctx.call(current_flow_node, session_id=self.walk.id)
        return None

    async def _advance(self, **answer: Any) -> dict:
        """An AI step in three phases: the answer stored (with the prefetched node for it,
        when one is ready: one transaction, nothing to wait for), the node generated (the
        only slow part, and the only one Esc stops), the node stored as pending."""
        judge = self.ctx.step_judge()
        ready = self._prefetcher.ready(answer.get("answer")) if self._prefetcher and answer else None
        step = await self.ctx.call(
            ai_steps.answer_ai_node, session_id=self.walk.id, prefetched=ready, judge=judge, meter=self.meter, **answer
        )
        self._stored_walk = step.walk, step.context.walked_path
        if step.served is not None:
            if answer:
                self._discard_prefetch()
            return step.served
        prefetch = self._claim_prefetch(answer, step.context)
        if answer:  # the transcript shows the answer while the AI writes
            self.walk, self.steps = step.walk, step.context.walked_path
            self._refresh_transcript()
            self._note_sent(answer.get("note"))
        checked = await self._generate(step.context, prefetch)
        self._stored_walk = None
        return await self.ctx.call(
            ai_steps.serve_ai_node, session_id=self.walk.id, step=step, checked=checked, judge=judge, meter=self.meter
        )

    @property
    def meter(self) -> Any:
        """Counts the tokens of every model call this screen makes (prefetches too)."""
        if self._meter is None:
            from rflow_tui.ai.usage import Meter

            self._meter = Meter()
        return self._meter

    async def _generate(self, context, prefetch=None) -> Any:
        """The next node (``ai.step``), in a task of its own so that Esc (``stop``) cancels
        the generation alone, never a store call."""
        from rflow_tui.ai.errors import GenerationCancelledError
        from rflow_tui.ai.step import next_node
        from rflow_tui.ai.usage import metered

        generator = self.ctx.generator() or _Unavailable(self.ctx.generator_error)
        self.card.wait_for_ai()
        await self.answers.wait_for_ai()
        self.refresh_bindings()  # resolve and escalate come back to life in the footer while the AI writes
        self._settle_focus()
        with metered(self.meter):
            task = asyncio.ensure_future(
                next_node(
                    generator,
                    context,
                    self.ctx.step_judge(),
                    deadline_seconds=self.ctx.settings.llm.step_deadline_seconds,
                    prefetch=prefetch,
                    on_preview=self.card.preview,
                    on_progress=self.card.progress,
                )
            )
        self.generation = task
        try:
            await asyncio.wait({task})
        finally:
            task.cancel()  # a no-op once done; stops the AI when the screen itself goes away
            self.generation = None
        if task.cancelled():
            raise GenerationCancelledError(
                "You stopped the AI before it wrote the next step. Your answer is saved: "
                "t asks it again, e escalates, r resolves."
            )
        return task.result()

    # --- prefetch: the next node for each answer, written while the tech reads ----------

    def _prefetcher_for_walk(self) -> Any:
        if self._prefetcher is None and self.ctx.settings.llm.prefetch and self.ctx.generator() is not None:
            from rflow_tui.ai.prefetch import Prefetcher

            llm = self.ctx.settings.llm
            self._prefetcher = Prefetcher(
                self.ctx.generator(),
                self.ctx.step_judge(),
                llm.step_deadline_seconds,
                self.meter,
                judge_ahead=llm.judge_prefetch,
            )
        return self._prefetcher

    def _claim_prefetch(self, answer: dict[str, Any], context) -> Any:
        """The prefetch for the answer just stored, if it fits; the rest are thrown away."""
        prefetcher = self._prefetcher
        if prefetcher is None:
            return None
        if not answer:
            prefetcher.discard()
            return None
        return prefetcher.claim(answer.get("answer"), context)

    def _discard_prefetch(self) -> None:
        if self._prefetcher is not None:
            self._prefetcher.discard()

    @work(exclusive=True, group="prefetch")
    async def prefetch_answers(self, token: str) -> None:
        """Start writing the next node for each answer of the step now on screen."""
        prefetcher = self._prefetcher_for_walk()
        if prefetcher is None:
            return
        contexts = await self.ctx.call(ai_steps.ai_prefetch_contexts, session_id=self.walk.id, token=token)
        on_screen = self.node is not None and self.node.get("token") == token and not self.busy
        if contexts and on_screen and not self.query_one("#step-note", Input).value.strip():
            prefetcher.start(contexts)

    @on(Input.Changed, "#step-note")
    def _note_typed(self, event: Input.Changed) -> None:
        """A step note goes into the next prompt: what was prefetched without it is thrown away."""
        if event.value.strip():
            self._discard_prefetch()

    def on_unmount(self) -> None:
        self._discard_prefetch()
        self.stop_generation()

    def stop_generation(self) -> bool:
        """Stop the AI writing the next step, if it is; True when it was."""
        if self.generation is None or self.generation.done():
            return False
        self.generation.cancel()
        return True

    async def _run(self, fetch) -> None:
        """Run one step in the worker: loading state on, errors shown, nothing typed lost."""
        from rflow_tui.ai.errors import GenerationError

        self._set_busy(True)
        self._stored_walk = None
        try:
            node = await fetch()
        except GenerationError as exc:
            await self._reload_walk()
            self._set_busy(False)
            await self._show_error(str(exc), retry_after=exc.retry_after)
            return
        except DatabaseError as exc:  # nothing was recorded; the step note stays for the retry
            self._set_busy(False)
            await self._show_error(str(exc))
            return
        except ServiceError as exc:
            self._set_busy(False)
            self.notify(str(exc), severity="error", timeout=8, markup=False)
            if isinstance(exc, StaleWalk):  # show where the walk is now, then answer again
                self.call_later(self.load_node)
            return
        stored, self._stored_walk = self._stored_walk, None
        if stored is not None:
            self.walk, self.steps = stored
            self._refresh_transcript()
        else:
            await self._reload_walk()
        self._set_busy(False)
        await self._show_node(node)
        if self.walk.session_kind == WalkKind.AI_BUILD and node and node.get("token"):
            self.prefetch_answers(node["token"])

    @on(AnswerBar.Answered)
    def _answered(self, event: AnswerBar.Answered) -> None:
        self.submit(event.answer)

    @on(AnswerBar.Requested)
    async def _requested(self, event: AnswerBar.Requested) -> None:
        await self.run_action(event.action)

    @work(exclusive=True, group="walk")
    async def submit(self, answer: str | None) -> None:
        if not await self._stored():
            return
        if self.node is None:  # nothing to answer (AnswerBar offers answers only on a node)
            return
        note = self.query_one("#step-note", Input).value.strip() or None
        node_id, token, version = self.node["id"], self.node.get("token"), self.walk.version
        if note is None and self.walk.session_kind == WalkKind.AI_BUILD and await self._hit(answer):
            return

        async def fetch():
            if self.walk.session_kind == WalkKind.AI_BUILD:
                return await self._advance(node_id=node_id, token=token, answer=answer, note=note, version=version)
            from rflow_tui.services.walks.flow_steps import answer_flow_node

            return await self.ctx.call(
                answer_flow_node, session_id=self.walk.id, answer=answer, note=note, node_id=node_id, version=version
            )

        before = self.walk.step_count
        await self._run(fetch)
        if self.walk.step_count > before:
            self._note_sent(note)

    # --- a prefetch hit: shown at once, stored behind it --------------------------------------

    async def _hit(self, answer: str | None) -> bool:
        """Show the node prefetched (and checked by both layers) for ``answer`` now, send the
        prefetches for its own answers before drawing it, and store the answer with it in the
        background, in one transaction as before (the answer is never stored after the node).
        False, with nothing changed, when no checked node is ready for ``answer``."""
        prefetcher, node = self._prefetcher, self.node
        ready = prefetcher.ready(answer) if prefetcher is not None else None
        if ready is None or ready.judge is not self.ctx.step_judge() or node is None or not node.get("token"):
            return False  # nothing ready, or the claim still has to judge it (``[llm] judge_prefetch = false``)
        taken = prefetcher.take_ready(answer)
        if taken is None:
            return False
        checked, context = taken
        from rflow_tui.ai.prefetch import answer_contexts

        served = dict(checked.node)
        prefetcher.start(answer_contexts(context, served))
        self._storing = asyncio.ensure_future(
            self._store_hit(checked, served, node_id=node["id"], token=node["token"], answer=answer)
        )
        await self._show_node(served)
        return True

    async def _store_hit(self, checked: Any, served: dict[str, Any], **answered: Any) -> None:
        """The answer and the node on screen, stored; the node gets the token its answer needs."""
        step = await self.ctx.call(
            ai_steps.answer_ai_node,
            session_id=self.walk.id,
            version=self.walk.version,
            prefetched=checked,
            judge=checked.judge,
            meter=self.meter,
            **answered,
        )
        if step.served is None:  # another window moved the walk: this node does not follow its path
            raise StaleWalk("this walk moved on in another window; showing where it is now")
        served["token"] = step.served["token"]
        self.walk, self.steps = step.walk, step.context.walked_path
        self._refresh_transcript()

    async def _stored(self) -> bool:
        """Wait for a hit's store write; if it failed, say so and show the walk as stored."""
        storing, self._storing = self._storing, None
        if storing is None:
            return True
        try:
            await storing
        except (ServiceError, DatabaseError) as exc:
            self._discard_prefetch()
            self.notify(str(exc), severity="error", timeout=8, markup=False)
            self.call_later(self.load_node)
            return False
        return True

    def _note_sent(self, note: str | None) -> None:
        """The note went with a stored answer: clear it, unless the tech has typed on since."""
        note_input = self.query_one(StepNote)
        note_input.sent()
        if (note_input.value.strip() or None) == note:
            note_input.value = ""

    def action_retry(self) -> None:
        if self.failed is None or self.busy:
            return
        wait = self.card.retry_wait_left
        if wait:  # the service said when it takes calls again: a call before then is sure to be refused
            self.notify(f"The AI service asked us to wait: t works again in {wait} s.", timeout=4, markup=False)
            return
        self.load_node()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Step back exists only on a tree (flow, proposal): elsewhere it is neither offered nor listed.
        While a step is being stored, resolve and escalate wait (the footer shows them dimmed);
        while the AI writes, they always work: nobody waits on the model to end a walk."""
        if action == "step_back":
            return self.walk.session_kind in WALKS_A_TREE
        if action in ("resolve", "escalate") and self.busy and self.answers.mode != "waiting":
            return None
        return True

    @work(exclusive=True, group="walk")
    async def action_step_back(self) -> None:
        if self.walk.session_kind not in WALKS_A_TREE or self.busy:
            return
        self._discard_prefetch()  # the context changes: nothing written for the old one fits
        from rflow_tui.services.walks.flow_steps import step_back

        await self._run(lambda: self.ctx.call(step_back, session_id=self.walk.id, version=self.walk.version))

    @on(Input.Submitted, "#step-note")
    def _note_done(self) -> None:
        self.answers.focus()

    def action_focus_step_note(self) -> None:
        self.query_one("#step-note").focus()

    def action_focus_notes(self) -> None:
        self.notes.focus_editor()

    async def _store_notes(self, notes: list[str]) -> None:
        await self.ctx.call(walk_steps.update_notes, session_id=self.walk.id, notes=notes)

    async def _store_draft(self, draft: str) -> None:
        await self.ctx.call(walk_steps.save_step_note_draft, session_id=self.walk.id, draft=draft)

    # --- endings ---------------------------------------------------------------------

    @work(exclusive=True, group="end")
    async def action_resolve(self) -> None:
        from rflow_tui.tui.screens.dialogs import ResolveDialog

        result = await self.app.push_screen_wait(ResolveDialog(self.resolve_draft))
        if result is not None:
            await self._finish(walk_endings.resolve, result, "resolved")
        else:
            self._settle_focus()

    @work(exclusive=True, group="end")
    async def action_escalate(self) -> None:
        from rflow_tui.tui.screens.dialogs import EscalateDialog

        result = await self.app.push_screen_wait(EscalateDialog(self.escalate_draft))
        if result is not None:
            await self._finish(walk_endings.escalate, result, "escalated")
        else:
            self._settle_focus()

    @work(exclusive=True, group="end")
    async def action_abandon(self) -> None:
        """Stop this walk without an outcome; the ticket goes back to the queue (or, to switch
        kinds, straight to the choice of how to walk it)."""
        from rflow_tui.services.tickets import ticket_of
        from rflow_tui.tui.screens.dialogs import AbandonDialog

        result = await self.app.push_screen_wait(AbandonDialog(self.abandon_draft))
        if result is None:
            self._settle_focus()
            return
        start_another = result.pop("start_another")
        ticket = await self.ctx.call(ticket_of, ticket_id=self.walk.ticket_id) if start_another else None
        if await self._finish(walk_endings.abandon, result, "abandoned") and ticket is not None:
            self.app.post_message(TicketChosen(ticket))  # no await after the screen went: it is sent now

    async def _finish(self, operation, fields: dict, done: str) -> bool:
        """Resolve or escalate; works while the AI writes (it is stopped: the walk ends here)."""
        self.stop_generation()
        if not await self._stored():  # the answer last given is stored before the walk ends
            return False
        if not await self.notes.flush():
            self.notify(
                f"Session notes are not saved (see under them), so the walk is not {done} yet",
                severity="error",
                markup=False,
            )
            return False
        try:
            await self.ctx.call(operation, session_id=self.walk.id, **fields)
        except ServiceError as exc:
            self.notify(str(exc), severity="error", timeout=8, markup=False)
            return False
        self.notify(f"{self.walk.ticket_id} {done}", markup=False)
        self.app.post_message(WalkEnded())
        self.dismiss()
        return True

    def action_leave(self) -> None:
        """Esc in a text field returns to the answers; while the AI writes, Esc stops it;
        elsewhere it goes back to the tickets."""
        if isinstance(self.focused, (Input, TextArea)):
            self.answers.focus()
            return
        if self.stop_generation():
            return
        self.leave()

    def action_stop(self) -> None:
        self.stop_generation()

    @work(exclusive=True, group="leave")
    async def leave(self) -> None:
        if await self.notes.flush():
            self.dismiss()
        else:
            self.notify(
                "Session notes are not saved (see under them): fix that, or copy them out, before leaving.",
                severity="error",
                markup=False,
            )

    @work(group="copy")
    async def action_copy_transcript(self) -> None:
        from rflow_tui.services.export import transcript_markdown
        from rflow_tui.services.walks.reads import read_transcript
        from rflow_tui.tui.clipboard import copy_transcript

        data = await self.ctx.call(read_transcript, session_id=self.walk.id)
        self.notify(
            copy_transcript(self.app, transcript_markdown(data), self.walk.ticket_id, self.walk.id), markup=False
        )
