"""Every fixed vocabulary of the domain, once. Stored values are these strings.

``StrEnum`` members compare equal to their strings, so rows written before these
existed read back as members, and a member stored in a column is its plain value.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    ENGINEER = "engineer"
    L1_TECH = "l1_tech"


ENGINEER_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.ENGINEER})
ADMIN_ROLES = frozenset({Role.OWNER, Role.ADMIN})


class WalkStatus(StrEnum):
    ACTIVE = "active"
    RESOLVED = "resolved"
    ESCALATED = "escalated"
    ABANDONED = "abandoned"  # stopped without an outcome (a reason kept); the ticket goes back to the queue


WALK_KIND_NAMES = {"flow": "Flow", "proposal": "Proposal", "adhoc": "Ad-hoc", "ai_build": "AI build"}
"""How a walk's kind reads on screen and in messages (never the stored value)."""


class WalkKind(StrEnum):
    FLOW = "flow"
    PROPOSAL = "proposal"
    ADHOC = "adhoc"
    AI_BUILD = "ai_build"


WALKS_A_TREE = (WalkKind.FLOW, WalkKind.PROPOSAL)


class NodeType(StrEnum):
    QUESTION = "question"
    CHOICE = "choice"  # authored flows only: 2 to 6 labelled options
    INSTRUCTION = "instruction"
    RESOLUTION = "resolution"
    ESCALATE = "escalate"


TERMINAL_NODE_TYPES = (NodeType.RESOLUTION, NodeType.ESCALATE)
ASKING_NODE_TYPES = (NodeType.QUESTION, NodeType.CHOICE)  # answered by picking a labelled button
AI_NODE_TYPES = (NodeType.QUESTION, NodeType.INSTRUCTION, NodeType.RESOLUTION, NodeType.ESCALATE)  # two-way only


class Answer(StrEnum):
    YES = "yes"
    NO = "no"


class TicketKind(StrEnum):
    INTERNAL = "internal"
    PSA = "psa"


class TicketStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    ESCALATED = "escalated"


OPEN_TICKET_STATUSES = (TicketStatus.OPEN, TicketStatus.IN_PROGRESS)
CLOSED_TICKET_STATUSES = (TicketStatus.RESOLVED, TicketStatus.ESCALATED)  # reopened before they are walked again


class ProposalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class ReasonCategory(StrEnum):
    """Why a walk was escalated; ``label`` is what a person reads."""

    NEEDS_ADMIN = "needs_admin"
    HARDWARE = "hardware"
    NETWORK = "network"
    SECURITY = "security"
    VENDOR = "vendor"
    NO_FLOW = "no_flow"
    USER_UNAVAILABLE = "user_unavailable"
    OTHER = "other"

    @property
    def label(self) -> str:
        return _REASON_LABELS[self]

    @property
    def short_label(self) -> str:
        """A few words, for a list column where the whole label does not fit."""
        return _REASON_SHORT_LABELS[self]

    @classmethod
    def label_for(cls, value: str | None) -> str | None:
        """The label of a stored category; None for an unknown one."""
        return cls(value).label if value in tuple(cls) else None

    @classmethod
    def short_label_for(cls, value: str | None) -> str | None:
        """The short label of a stored category; None for an unknown one."""
        return cls(value).short_label if value in tuple(cls) else None


_REASON_LABELS = {
    ReasonCategory.NEEDS_ADMIN: "Needs admin rights or access L1 does not have",
    ReasonCategory.HARDWARE: "Hardware fault or replacement",
    ReasonCategory.NETWORK: "Network or infrastructure outage",
    ReasonCategory.SECURITY: "Possible security incident",
    ReasonCategory.VENDOR: "Needs a vendor or third party",
    ReasonCategory.NO_FLOW: "No flow covers it and no fix found",
    ReasonCategory.USER_UNAVAILABLE: "User unavailable to continue",
    ReasonCategory.OTHER: "Other",
}

_REASON_SHORT_LABELS = {
    ReasonCategory.NEEDS_ADMIN: "Needs admin",
    ReasonCategory.HARDWARE: "Hardware",
    ReasonCategory.NETWORK: "Network",
    ReasonCategory.SECURITY: "Security",
    ReasonCategory.VENDOR: "Vendor",
    ReasonCategory.NO_FLOW: "No flow",
    ReasonCategory.USER_UNAVAILABLE: "User away",
    ReasonCategory.OTHER: "Other",
}


class EscalationOutcome(StrEnum):
    """How an engineer closed an escalation; ``label`` is what a person reads."""

    FIXED = "fixed"
    WORKAROUND = "workaround"
    NO_FAULT = "no_fault"
    VENDOR = "vendor"
    DUPLICATE = "duplicate"
    WONT_FIX = "wont_fix"

    @property
    def label(self) -> str:
        return _OUTCOME_LABELS[self]

    @classmethod
    def label_for(cls, value: str | None) -> str | None:
        """The label of a stored outcome; None for an unknown one."""
        return cls(value).label if value in tuple(cls) else None


_OUTCOME_LABELS = {
    EscalationOutcome.FIXED: "Fixed",
    EscalationOutcome.WORKAROUND: "Workaround in place",
    EscalationOutcome.NO_FAULT: "No fault found",
    EscalationOutcome.VENDOR: "Handed to a vendor",
    EscalationOutcome.DUPLICATE: "Duplicate of another ticket",
    EscalationOutcome.WONT_FIX: "Will not be fixed",
}


def values(enum: type[StrEnum]) -> str:
    """The allowed values, for an error message: 'a, b or c'."""
    names = [member.value for member in enum]
    return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]
