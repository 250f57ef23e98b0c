"""The steps of a walk as the tech took them, shared by the walk and escalations screens."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import Static

from rflow_tui.tui.safe import clean

if TYPE_CHECKING:
    from rflow_tui.domain.walk_step import WalkStep


def transcript_text(steps: list[WalkStep]) -> Text:
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


def _shown(steps: list[WalkStep] | None) -> Text:
    """None: the steps are still being read from the store (never "No steps yet" for a long walk)."""
    return Text("…", style="dim") if steps is None else transcript_text(steps)


class Transcript(Static):
    """A walked path, numbered, with answers, notes and stepped-back steps struck through."""

    def __init__(self, steps: list[WalkStep] | None = None, *, id: str | None = None) -> None:
        super().__init__(_shown(steps), id=id)

    def show(self, steps: list[WalkStep] | None) -> None:
        self.update(_shown(steps))
