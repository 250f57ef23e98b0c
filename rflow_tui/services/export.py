"""Session transcripts for pasting into a PSA ticket: one plain dict, as Markdown or JSON.

The transcript keeps every step, including those stepped back over (marked undone),
so the ticket shows what was actually tried. All text comes from tickets, techs or
the LLM: control characters and terminal escapes are stripped before it leaves.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rflow_tui.domain.enums import (
    ASKING_NODE_TYPES,
    TERMINAL_NODE_TYPES,
    EscalationOutcome,
    ReasonCategory,
    WalkKind,
    WalkStatus,
)
from rflow_tui.domain.walk_names import escalated_without_walk, kind_name
from rflow_tui.domain.walk_step import WalkStep
from rflow_tui.models import AuditLog, EscalationComment, Flow, FlowProposal, L1WalkSession, User
from rflow_tui.services import tickets
from rflow_tui.services.access import in_account
from rflow_tui.services.feed import WALK_TARGET
from rflow_tui.text import clean, inert_json


def _text(value: Any) -> str | None:
    """``text.clean``, with None kept as JSON null."""
    return None if value is None else clean(value)


def _when(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def _step(step: WalkStep) -> dict[str, Any]:
    """One step as the transcript shows it, whichever kind of walk recorded it."""
    return {
        "node_id": _text(step.node_id),
        "node_type": step.node_type.value,
        "text": _text(step.text),
        "answer": step.answer or None,
        "answer_label": _text(step.answer_label) if step.answer is not None else None,
        "note": _text(step.l1_note) or None,
        "undone": step.undone,
    }


def _note(note: Any) -> str:
    if isinstance(note, str):
        return clean(note)
    if isinstance(note, dict) and isinstance(note.get("text"), str):
        return clean(note["text"])
    return clean(json.dumps(note, ensure_ascii=False))


async def walk_transcript(
    db: AsyncSession,
    *,
    actor: User,
    walk: L1WalkSession,
    steps: list[WalkStep],
    end_node: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything a PSA ticket needs about one walk, as plain JSON-ready values. The walk is
    read in the actor's account, with the node a tree walk is on, by ``walks.reads``."""
    ticket = await tickets.find_ticket(db, actor.account_id, walk.ticket_id)
    tech = await in_account(db, User, actor.account_id, id=walk.created_by_user_id)
    walked: dict[str, Any] | None = None
    if walk.session_kind == WalkKind.FLOW and walk.flow_id:
        flow = await in_account(db, Flow, actor.account_id, id=walk.flow_id)
        if flow:
            walked = {"type": WalkKind.FLOW.value, "id": flow.id, "title": _text(flow.title), "version": flow.version}
    elif walk.session_kind == WalkKind.PROPOSAL and walk.flow_proposal_id:
        proposal = await in_account(db, FlowProposal, actor.account_id, id=walk.flow_proposal_id)
        if proposal:
            walked = {
                "type": WalkKind.PROPOSAL.value,
                "id": proposal.id,
                "title": _text(proposal.title),
                "version": None,
            }
    end = (
        {
            "node_id": _text(str(end_node.get("id"))),
            "node_type": end_node.get("type"),
            "text": _text(end_node.get("text")),
        }
        if end_node is not None
        else None
    )
    return {
        "session_id": walk.id,
        "kind": walk.session_kind,
        "kind_label": kind_name(walk),
        "without_walk": escalated_without_walk(walk),
        "status": walk.status,
        "ticket": {
            "id": _text(walk.ticket_id),
            "kind": walk.ticket_kind,
            "psa_system": _text(ticket.psa_system) if ticket else None,
            "subject": _text(ticket.subject) if ticket else None,
            "requester": _text(ticket.requester) if ticket else None,
        },
        "tech": {
            "name": _text(tech.name) if tech else None,
            "email": _text(tech.email) if tech else None,
            "acting_as": walk.acting_as,
        },
        "walked": walked,
        "category": _text(walk.category),
        "problem": _text(walk.problem_text),
        "started_at": _when(walk.created_at),
        "ended_at": _when(walk.resolved_at),
        "steps": [_step(step) for step in steps],
        "current_node": end,
        **({"ai_tokens": ai_tokens(walk, steps)} if walk.session_kind == WalkKind.AI_BUILD else {}),
        "notes": [_note(n) for n in walk.walk_notes or []],
        "resolution": (
            {"helpful": walk.helpful, "notes": _text(walk.resolution_notes)}
            if walk.status == WalkStatus.RESOLVED
            else None
        ),
        "escalation": (
            {
                "reason_category": walk.escalation_reason_category,
                "reason_category_label": ReasonCategory.label_for(walk.escalation_reason_category),
                "reason": _text(walk.escalation_reason),
            }
            if walk.status == WalkStatus.ESCALATED
            else None
        ),
        "abandoned": {"reason": _text(walk.resolution_notes)} if walk.status == WalkStatus.ABANDONED else None,
    }


# What the audit log tells of an escalation's fate, in the words a person reads.
FATE_EVENTS = {
    "escalation.claim": "claimed it",
    "escalation.release": "let it go",
    "escalation.close": "closed it",
    "escalation.reopen": "reopened it",
}


async def escalation_fate(db: AsyncSession, actor: User, walk: L1WalkSession) -> dict[str, Any]:
    """What became of an escalation since: who is on it, how it was closed, its comments and
    every claim, close and reopen in order (the audit log keeps an outcome a reopen cleared)."""
    names: dict[int | None, str] = {}

    async def name(user_id: int | None) -> str | None:
        if user_id is None:
            return None
        if user_id not in names:
            user = await in_account(db, User, actor.account_id, id=user_id)
            names[user_id] = clean(user.name or user.email, single_line=True) if user else "someone"
        return names[user_id]

    comments = await db.exec(
        select(EscalationComment)
        .where(EscalationComment.account_id == actor.account_id, EscalationComment.session_id == walk.id)
        .order_by(col(EscalationComment.id))
    )
    events = await db.exec(
        select(AuditLog)
        .where(
            AuditLog.account_id == actor.account_id,
            AuditLog.target_type == WALK_TARGET,
            AuditLog.target_id == str(walk.id),
            col(AuditLog.action).in_(tuple(FATE_EVENTS)),
        )
        .order_by(col(AuditLog.seq))
    )
    history = []
    for event in events:
        outcome = (event.details or {}).get("outcome") if event.action == "escalation.close" else None
        history.append(
            {
                "what": FATE_EVENTS[event.action],
                "by": await name(event.actor_user_id),
                "at": _when(event.created_at),
                "outcome_label": EscalationOutcome.label_for(outcome),
            }
        )
    closed = (
        {
            "by": await name(walk.closed_by_user_id),
            "at": _when(walk.closed_at),
            "outcome": walk.outcome,
            "outcome_label": EscalationOutcome.label_for(walk.outcome) or _text(walk.outcome),
            "notes": _text(walk.outcome_notes),
        }
        if walk.closed_at is not None
        else None
    )
    return {
        "claimed_by": await name(walk.claimed_by_user_id),
        "claimed_at": _when(walk.claimed_at),
        "closed": closed,
        "history": history,
        "comments": [
            {"by": await name(c.author_user_id), "at": _when(c.created_at), "body": _text(c.body)} for c in comments
        ],
    }


def ai_tokens(walk: L1WalkSession, steps: list[WalkStep]) -> dict[str, dict[str, int]]:
    """What an AI walk's model calls cost, by role (generator, judge, all): each served node's
    share, kept with the step that answered it and, for the node waiting, with it."""
    from rflow_tui.ai.usage import total

    pending = (walk.pending_node or {}).get("ai_tokens")
    shares = [step.ai_tokens for step in steps if step.ai_tokens]
    return total([*shares, pending] if isinstance(pending, dict) else shares)


def transcript_json(t: dict[str, Any]) -> str:
    return inert_json(t, indent=2, default=str)


def _md(text: Any) -> str:
    """One line of untrusted text, safe inside Markdown (no headings/links/HTML injected)."""
    if text is None:
        return ""
    flat = clean(text, single_line=True)
    return re.sub(r"([\\`*_\[\]<>#|])", r"\\\1", flat)


def transcript_markdown(t: dict[str, Any]) -> str:
    """A Markdown transcript: header facts, numbered steps with the chosen labels, notes, outcome."""
    ticket, tech = t.get("ticket") or {}, t.get("tech") or {}
    title = f"rflow walk {t.get('session_id')} - ticket {_md(ticket.get('id'))}"
    lines = [f"## {title}", ""]
    ticket_line = f"{_md(ticket.get('id'))} ({ticket.get('kind')}"
    ticket_line += f", {_md(ticket['psa_system'])})" if ticket.get("psa_system") else ")"
    tech_line = _md(tech.get("name") or "")
    if tech.get("email"):
        tech_line = f"{tech_line} ({_md(tech['email'])})".strip()
    if tech.get("acting_as"):
        tech_line += " (engineer covering L1)"
    walk_line = str(t.get("kind_label") or t.get("kind"))
    walked = t.get("walked")
    if walked:
        walk_line += f': {walked["type"]} "{_md(walked["title"])}"'
        walk_line += f" v{walked['version']}" if walked.get("version") else ""
    facts = [
        ("Ticket", ticket_line),
        ("Subject", _md(ticket.get("subject"))),
        ("Requester", _md(ticket.get("requester"))),
        ("Technician", tech_line),
        ("Walk", walk_line),
        ("Category", _md(t.get("category"))),
        ("Problem", _md(t.get("problem"))),
        ("Status", t.get("status")),
        ("Started", t.get("started_at")),
        ("Ended", t.get("ended_at")),
    ]
    lines += [f"- **{name}:** {value}" for name, value in facts if value]
    lines += ["", "### Steps", ""]
    steps = t.get("steps") or []
    if not steps:
        lines.append("_Escalated without a walk: no steps._" if t.get("without_walk") else "_No steps were recorded._")
    for n, step in enumerate(steps, start=1):
        if step.get("node_type") in ASKING_NODE_TYPES:
            outcome = f" -> **{_md(step.get('answer_label') or step.get('answer'))}**"
        else:
            outcome = " -> done"
        undone = " _(stepped back; not counted)_" if step.get("undone") else ""
        line = f"{n}. {_md(step.get('text'))}{outcome}{undone}"
        if step.get("undone"):
            line = f"{n}. ~~{_md(step.get('text'))}{outcome}~~{undone}"
        lines.append(line)
        if step.get("note"):
            lines.append(f"   - Note: {_md(step['note'])}")
    node = t.get("current_node")
    if node and node.get("node_type") in TERMINAL_NODE_TYPES:
        lines += ["", f"Flow end: {_md(node.get('text'))}"]
    if t.get("notes"):
        lines += ["", "### Notes", ""] + [f"- {_md(note)}" for note in t["notes"]]
    if t.get("resolution"):
        res = t["resolution"]
        lines += ["", "### Resolution", "", f"- **Helpful walk:** {'yes' if res.get('helpful') else 'no'}"]
        if res.get("notes"):
            lines.append(f"- **Notes:** {_md(res['notes'])}")
    if t.get("escalation"):
        esc = t["escalation"]
        lines += ["", "### Escalation", ""]
        lines.append(f"- **Category:** {_md(esc.get('reason_category_label') or esc.get('reason_category'))}")
        lines.append(f"- **Reason:** {_md(esc.get('reason'))}")
        lines += _fate_markdown(t.get("engineers"))
    if t.get("abandoned"):
        lines += ["", "### Abandoned", "", f"- **Reason:** {_md(t['abandoned'].get('reason'))}"]
    return "\n".join(lines) + "\n"


def _fate_markdown(esc: dict[str, Any] | None) -> list[str]:
    """What the engineers did with it (``escalation_fate``: present when read after the walk ended)."""
    if not esc:
        return []
    closed = esc.get("closed")
    if closed:
        state = f"closed by {_md(closed.get('by'))} ({_md(closed.get('outcome_label'))}) at {closed.get('at')}"
    elif esc.get("claimed_by"):
        state = f"open, {_md(esc['claimed_by'])} is on it since {esc.get('claimed_at')}"
    else:
        state = "open, nobody is on it yet"
    lines = ["", "### What the engineers did", "", f"- **Now:** {state}"]
    if closed and closed.get("notes"):
        lines.append(f"- **What was done:** {_md(closed['notes'])}")
    for event in esc["history"]:
        outcome = f" ({_md(event['outcome_label'])})" if event.get("outcome_label") else ""
        lines.append(f"- {event.get('at')}: {_md(event.get('by'))} {event['what']}{outcome}")
    if esc.get("comments"):
        lines += ["", "### Comments", ""]
        lines += [f"- {_md(c.get('by'))} at {c.get('at')}: {_md(c.get('body'))}" for c in esc["comments"]]
    return lines
