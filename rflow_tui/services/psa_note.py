"""A walk's transcript as the PSA note it becomes: plain text, no markup language.

A PSA shows a note's text as it is (ConnectWise's ``text``, Zendesk's ``body``), so the
Markdown export's emphasis and backslash escapes would arrive as clutter, and any
markup at all would be something a ticket's author could smuggle in. Every value here
comes from ``export.walk_transcript``, already cleaned of control characters and
terminal escapes; this only lays it out.
"""

from __future__ import annotations

from typing import Any

from rflow_tui.domain.enums import ASKING_NODE_TYPES, TERMINAL_NODE_TYPES

INDENT = "   "


def _block(value: Any, indent: str = INDENT) -> str:
    """A value that may run over several lines, its later lines indented under the first."""
    return str(value).strip().replace("\n", "\n" + indent)


def transcript_text(t: dict[str, Any]) -> str:
    """Header facts, numbered steps with the answers given, notes, the outcome."""
    ticket, tech = t.get("ticket") or {}, t.get("tech") or {}
    lines = [f"rflow walk {t.get('session_id')} on ticket {ticket.get('id')}: {t.get('status')}", ""]
    who = tech.get("name") or ""
    if tech.get("email"):
        who = f"{who} <{tech['email']}>".strip()
    if tech.get("acting_as"):
        who += " (engineer covering L1)"
    walk = str(t.get("kind_label") or t.get("kind"))
    walked = t.get("walked")
    if walked:
        walk += f': {walked["type"]} "{walked["title"]}"' + (f" v{walked['version']}" if walked.get("version") else "")
    facts = [
        ("Subject", ticket.get("subject")),
        ("Requester", ticket.get("requester")),
        ("Technician", who),
        ("Walk", walk),
        ("Category", t.get("category")),
        ("Problem", t.get("problem")),
        ("Started", t.get("started_at")),
        ("Ended", t.get("ended_at")),
    ]
    lines += [f"{name}: {_block(value)}" for name, value in facts if value]
    lines += ["", "Steps:"]
    steps = t.get("steps") or []
    if not steps:
        lines.append("(no steps were recorded)")
    for n, step in enumerate(steps, start=1):
        if step.get("node_type") in ASKING_NODE_TYPES:
            outcome = f" -> {step.get('answer_label') or step.get('answer')}"
        else:
            outcome = " -> done"
        undone = " (stepped back; not counted)" if step.get("undone") else ""
        lines.append(f"{n}. {_block(step.get('text'))}{outcome}{undone}")
        if step.get("note"):
            lines.append(f"{INDENT}Note: {_block(step['note'], INDENT * 2)}")
    node = t.get("current_node")
    if node and node.get("node_type") in TERMINAL_NODE_TYPES:
        lines += ["", f"Flow end: {_block(node.get('text'))}"]
    if t.get("notes"):
        lines += ["", "Notes:"] + [f"- {_block(note)}" for note in t["notes"]]
    if t.get("resolution"):
        res = t["resolution"]
        lines += ["", f"Resolved. Helpful walk: {'yes' if res.get('helpful') else 'no'}"]
        if res.get("notes"):
            lines.append(f"Resolution notes: {_block(res['notes'])}")
    if t.get("escalation"):
        esc = t["escalation"]
        lines += ["", f"Escalated ({esc.get('reason_category_label') or esc.get('reason_category')})"]
        lines.append(f"Reason: {_block(esc.get('reason'))}")
    return "\n".join(lines) + "\n"
