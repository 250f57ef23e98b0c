"""The alert an escalation becomes: plain text, never markup, its secrets withheld.

Everything in it but rflow's own words came from a ticket or a tech, so every value is
cleaned of control characters and terminal escapes, and the ticket's subject, the reason
and (only when the desk asks) the tech's notes pass the same redaction as a PSA note, one
placeholder per value across the message. Apprise is told the body is text, so a service
that reads markup (Slack's ``<!channel>``, Teams' Markdown) is sent it escaped, as text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rflow_tui.domain.enums import ReasonCategory
from rflow_tui.redact import DEFAULT_PRIVACY, Privacy, Redactor
from rflow_tui.text import clean

TITLE_CAP = 200
NOTES_CAP = 4000  # an alert points at the escalation; the whole story is in rflow


@dataclass(frozen=True)
class Alert:
    title: str
    body: str


def _line(value: Any) -> str:
    return clean(value, single_line=True)


def link_of(facts: dict[str, Any], ticket_link: str = "") -> str:
    """The way back to the ticket: the PSA's own link, else the desk's ``[alerts] ticket_link``."""
    if facts.get("link"):
        return _line(facts["link"])
    if ticket_link:
        return ticket_link.replace("{ticket_id}", _line(facts.get("ticket_id")))
    return ""


def compose(
    facts: dict[str, Any],
    *,
    ref: str,
    include_notes: bool = False,
    ticket_link: str = "",
    privacy: Privacy = DEFAULT_PRIVACY,
) -> Alert:
    """The alert for an escalation's ``facts`` (``alert_outbox.facts_of``); ``ref`` ends it,
    so a receiver (or a person) can tell a second copy of the same alert."""
    redactor = Redactor(privacy)
    ticket = _line(facts.get("ticket_id"))
    subject = redactor.redact(_line(facts.get("subject")))
    category = str(facts.get("reason_category") or "")
    label = ReasonCategory.label_for(category) or _line(category)
    lines = [f"Ticket {ticket}: {subject}" if subject else f"Ticket {ticket}"]
    if facts.get("priority"):
        lines.append(f"Priority: {_line(facts['priority'])}")
    lines.append(f"Reason: {label}")
    reason = redactor.redact(clean(facts.get("reason")).strip())
    if reason:
        lines.append("Why: " + reason.replace("\n", "\n     "))
    if facts.get("escalated_by"):
        lines.append(f"Escalated by: {_line(facts['escalated_by'])}")
    link = link_of(facts, ticket_link)
    if link:
        lines.append(f"Link: {link}")
    notes = [clean(note).strip() for note in facts.get("notes") or [] if clean(note).strip()]
    if include_notes and notes:
        text = redactor.redact("\n".join(f"- {note}" for note in notes))
        lines += ["", "Notes:", text[:NOTES_CAP] + (" …" if len(text) > NOTES_CAP else "")]
    lines += ["", f"rflow alert {ref}"]
    title = f"Escalated: {ticket}" + (f" {subject}" if subject else "")
    return Alert(title=title[:TITLE_CAP], body="\n".join(lines))
