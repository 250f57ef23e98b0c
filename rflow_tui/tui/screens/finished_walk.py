"""A finished walk, read-only (Enter on My walks): what was tried, what the tech wrote, how it
ended, and, for an escalation, what the engineers did with it since. ``x`` exports the same
facts as the engineer's copy (``walks.reads.read_transcript``), never overwriting a file.

Every value comes from the transcript the service builds; it is shown as ``Text`` (never
parsed as markup), so a ticket or a note cannot style or act on the screen.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from rflow_tui.domain.enums import ASKING_NODE_TYPES
from rflow_tui.tui.safe import clean
from rflow_tui.tui.store_guard import StoreGuard

# (id, title): the summary has no title of its own
SECTIONS = (
    ("summary", ""),
    ("steps", "Transcript"),
    ("notes", "Session notes"),
    ("outcome", "Outcome"),
    ("fate", "What the engineers did"),
    ("comments", "Comments"),
)


def _line(out: Text, label: str, value: Any) -> None:
    if value:
        out.append(f"{label}: ", style="dim")
        out.append(clean(value) + "\n")


def summary_text(t: dict[str, Any]) -> Text:
    ticket, tech = t.get("ticket") or {}, t.get("tech") or {}
    out = Text(clean(f"{ticket.get('id')} · {ticket.get('subject') or ''}", single_line=True) + "\n", style="bold")
    _line(out, "Walk", t.get("kind_label"))
    walked = t.get("walked")
    if walked:
        _line(out, "Flow", f"{walked.get('title')}" + (f" v{walked['version']}" if walked.get("version") else ""))
    _line(out, "Technician", tech.get("name") or tech.get("email"))
    _line(out, "Problem", t.get("problem"))
    _line(out, "Started", t.get("started_at"))
    _line(out, "Ended", t.get("ended_at"))
    return out


def steps_text(t: dict[str, Any]) -> Text:
    steps = t.get("steps") or []
    if not steps:
        why = "Escalated without a walk: no steps" if t.get("without_walk") else "No steps were recorded"
        return Text(why, style="dim")
    out = Text()
    for n, step in enumerate(steps, start=1):
        asked = step.get("node_type") in ASKING_NODE_TYPES
        answer = (step.get("answer_label") or step.get("answer")) if asked else "done"
        style = "dim strike" if step.get("undone") else ""
        out.append(f"{n}. ", style=style)
        out.append(clean(step.get("text") or ""), style=style)
        out.append(" → ", style="dim")
        out.append(clean(answer or ""), style=f"bold {style}".strip())
        if step.get("undone"):
            out.append(" (stepped back)", style="dim")
        out.append("\n")
        if step.get("note"):
            out.append("   Note: ", style="dim")
            out.append(clean(step["note"]) + "\n")
    return out


def outcome_text(t: dict[str, Any]) -> Text:
    out = Text()
    if t.get("resolution"):
        res = t["resolution"]
        out.append("Resolved", style="bold green")
        out.append(f" · the walk helped: {'yes' if res.get('helpful') else 'no'}\n")
        _line(out, "What was done", res.get("notes") or "(nothing written)")
    elif t.get("escalation"):
        esc = t["escalation"]
        out.append("Escalated without a walk" if t.get("without_walk") else "Escalated", style="bold yellow")
        out.append(clean(f" · {esc.get('reason_category_label') or esc.get('reason_category')}") + "\n")
        _line(out, "Reason", esc.get("reason"))
    elif t.get("abandoned"):
        out.append("Abandoned", style="bold")
        out.append(" · the ticket went back to the queue\n")
        _line(out, "Why", t["abandoned"].get("reason"))
    return out


def fate_text(esc: dict[str, Any] | None) -> Text:
    """Who is on it or how it was closed, then every claim, close and reopen in order."""
    if not esc:
        return Text("Not escalated", style="dim")
    out = Text()
    closed = esc.get("closed")
    if closed:
        out.append("Closed", style="bold green")
        out.append(clean(f" · {closed.get('outcome_label')} · by {closed.get('by')} · {closed.get('at')}") + "\n")
        _line(out, "What was done", closed.get("notes"))
    elif esc.get("claimed_by"):
        out.append(clean(f"Open · claimed by {esc['claimed_by']} · since {esc.get('claimed_at')}") + "\n", style="bold")
    else:
        out.append("Open · nobody is on it yet\n", style="bold yellow")
    for event in esc.get("history") or []:
        outcome = f" ({event['outcome_label']})" if event.get("outcome_label") else ""
        out.append(clean(f"{event.get('at')} · {event.get('by')} {event.get('what')}{outcome}") + "\n", style="dim")
    return out


def comments_text(esc: dict[str, Any] | None) -> Text:
    comments = (esc or {}).get("comments") or []
    if not comments:
        return Text("none", style="dim")
    out = Text()
    for comment in comments:
        out.append(clean(f"{comment.get('by')} · {comment.get('at')}", single_line=True) + "\n", style="dim")
        out.append(clean(comment.get("body") or "") + "\n")
    return out


class FinishedWalkScreen(StoreGuard, Screen):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("x", "export", "Export transcript"),
    ]

    def __init__(self, ctx, session_id: int) -> None:
        super().__init__()
        self.ctx = ctx
        self.session_id = session_id
        self.transcript: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="finished-walk"):
            for name, title in SECTIONS:
                if title:
                    yield Static(title, classes="section-title")
                yield Static("…", id=f"finished-{name}")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(exclusive=True, group="finished-walk")
    async def load(self) -> None:
        from rflow_tui.services.walks.reads import read_transcript

        t = await self.ctx.call(read_transcript, session_id=self.session_id)
        self.transcript = t
        notes = "\n".join(t.get("notes") or [])
        shown = {
            "summary": summary_text(t),
            "steps": steps_text(t),
            "notes": Text(clean(notes)) if notes.strip() else Text("none", style="dim"),
            "outcome": outcome_text(t),
            "fate": fate_text(t.get("engineers")),
            "comments": comments_text(t.get("engineers")),
        }
        for name, text in shown.items():
            self.query_one(f"#finished-{name}", Static).update(text)
        self.query_one("#finished-walk").focus()

    def action_back(self) -> None:
        self.dismiss()

    def action_export(self) -> None:
        """The same Markdown the engineer's ``x`` copies: to the clipboard, and to a new file where
        the clipboard may not arrive (an existing file is never overwritten)."""
        from rflow_tui.services.export import transcript_markdown
        from rflow_tui.tui.clipboard import copy_transcript

        t = self.transcript
        if t is None:
            self.notify("The walk is still loading", severity="warning", markup=False)
            return
        ticket_id = (t.get("ticket") or {}).get("id") or "ticket"
        self.notify(copy_transcript(self.app, transcript_markdown(t), ticket_id, self.session_id), markup=False)
