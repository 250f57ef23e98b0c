"""The answers to the current step, as buttons that carry the literal labels and as keys.

Focus rules: the bar itself takes the focus, its buttons never do, so Enter can
only mean "done" on an instruction and never presses whichever answer happens to
be focused; a question is answered with 1/2/y/n or a click, a choice with the
number of its option (1 to 6) or a click.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Button

from rflow_tui.tui.safe import plain

Mode = Literal["none", "question", "choice", "instruction", "ending", "error", "waiting"]
Request = Literal["resolve", "escalate", "retry", "stop"]


class AnswerButton(Button, can_focus=False):
    """Pressed by a click or by the bar's keys; focus stays on the bar."""


def _resolve_button() -> AnswerButton:
    return AnswerButton("Resolve (r)", variant="success", id="do-resolve", action="request('resolve')")


def _escalate_button() -> AnswerButton:
    return AnswerButton("Escalate (e)", variant="warning", id="do-escalate", action="request('escalate')")


class AnswerBar(Horizontal, can_focus=True):
    BINDINGS = [
        Binding("1", "pick(1)", "First answer", show=False),
        Binding("2", "pick(2)", "Second answer", show=False),
        Binding("y", "answer('yes')", "First answer (a question)", show=False),
        Binding("n", "answer('no')", "Second answer (a question)", show=False),
        *(Binding(str(n), f"pick({n})", f"Answer {n} (a choice)", show=False) for n in range(3, 7)),
        Binding("enter", "acknowledge", "Done (an instruction)", show=False),
    ]

    @dataclass
    class Answered(Message):
        """The tech answered: "yes" / "no" for a question, "1" to "6" for a choice, None
        for a finished instruction."""

        answer: str | None

    @dataclass
    class Requested(Message):
        """The tech asked the screen to resolve, escalate or retry."""

        action: Request

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.mode: Mode = "none"
        self.options = 0  # how many a choice offers
        self._busy = False

    # --- actions down: the screen says what the step offers ----------------------

    async def ask(self, yes_label: str, no_label: str) -> None:
        await self._offer(
            "question",
            AnswerButton(
                plain(f"1  {yes_label}", single_line=True), variant="primary", id="answer-yes", action="pick(1)"
            ),
            AnswerButton(
                plain(f"2  {no_label}", single_line=True), variant="primary", id="answer-no", action="pick(2)"
            ),
        )

    async def choose(self, labels: list[str]) -> None:
        """A choice: one button per option, numbered as its key."""
        self.options = len(labels)
        buttons = [
            AnswerButton(
                plain(f"{n}  {label}", single_line=True), variant="primary", id=f"answer-{n}", action=f"pick({n})"
            )
            for n, label in enumerate(labels, start=1)
        ]
        await self._offer("choice", *buttons)

    async def instruct(self) -> None:
        await self._offer(
            "instruction", AnswerButton("Done · Enter", variant="primary", id="acknowledge", action="acknowledge")
        )

    async def offer_endings(self, *, escalate_first: bool = False) -> None:
        buttons = (_escalate_button(), _resolve_button()) if escalate_first else (_resolve_button(), _escalate_button())
        await self._offer("ending", *buttons)

    async def wait_for_ai(self) -> None:
        """While the AI writes: stop it, or end the walk without waiting (these stay live)."""
        stop = AnswerButton("Stop (Esc)", id="do-stop", action="request('stop')")
        await self._offer("waiting", stop, _escalate_button(), _resolve_button())
        self.busy = False

    async def offer_retry(self) -> None:
        retry = AnswerButton("Retry (t)", variant="primary", id="do-retry", action="request('retry')")
        resolve = AnswerButton("Resolve (r)", id="do-resolve", action="request('resolve')")
        await self._offer("error", retry, _escalate_button(), resolve)

    @property
    def busy(self) -> bool:
        return self._busy

    @busy.setter
    def busy(self, busy: bool) -> None:
        """While a step is being stored or generated, nothing here answers."""
        self._busy = busy
        for button in self.query(Button):
            button.disabled = busy

    async def _offer(self, mode: Mode, *buttons: Button) -> None:
        self.mode = mode
        await self.remove_children()
        await self.mount(*buttons)
        self.busy = self._busy

    # --- messages up ---------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys and buttons act only when the step offers them; otherwise they are shown
        as "not now" and the key passes on, so Enter on a question answers nothing."""
        if self._busy:
            return None
        if action == "pick":
            (n,) = parameters
            asked = self.mode == "question" and n in (1, 2)
            return True if asked or (self.mode == "choice" and isinstance(n, int) and n <= self.options) else None
        wanted = {"answer": "question", "acknowledge": "instruction"}.get(action)
        if wanted is not None and self.mode != wanted:
            return None
        return True

    def action_answer(self, answer: str) -> None:
        """y / n: a question's first or second answer (a choice has no yes or no)."""
        self.post_message(self.Answered(answer))

    def action_pick(self, n: int) -> None:
        """The n-th answer: yes / no on a question, the option's number on a choice."""
        answer = ("yes" if n == 1 else "no") if self.mode == "question" else str(n)
        self.post_message(self.Answered(answer))

    def action_acknowledge(self) -> None:
        self.post_message(self.Answered(None))

    def action_request(self, action: Request) -> None:
        self.post_message(self.Requested(action))
