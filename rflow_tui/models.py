"""The store's tables: the spec's fields, each desk's rows carrying ``account_id``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import JSON, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from rflow_tui.domain.enums import ProposalStatus, TicketKind, TicketStatus, WalkStatus


def utcnow() -> datetime:
    """Aware UTC: SQLModel's datetime columns refuse naive values."""
    return datetime.now(UTC)


class _Stored(Protocol):
    id: int | None


def row_id(row: _Stored) -> int:
    """The primary key of a row already in the store (SQLModel types it Optional until a flush)."""
    if row.id is None:
        raise ValueError(f"{type(row).__name__} has no id yet: add and flush it first")
    return row.id


def _json(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(JSON, nullable=nullable))


class Account(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow)


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    email: str = Field(max_length=320)  # unique within its account (migration 0008)
    name: str = Field(default="", max_length=200)
    account_role: str = Field(max_length=20)
    coverage: bool = Field(default=False, description="engineer may use the L1 surface")
    is_active: bool = True
    deleted_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    db_role: str | None = Field(
        default=None,
        max_length=63,
        index=True,
        description="PostgreSQL: the database role this person connects as, unique within the account; "
        "honoured only if the role was made for it (see migrations/rls.py)",
    )
    os_login: str | None = Field(
        default=None,
        max_length=64,
        index=True,
        description="SQLite: the OS login --user may be used from for this person",
    )


class Ticket(SQLModel, table=True):
    """A ticket rflow knows: its own (internal) or a PSA ticket referenced by id."""

    __table_args__ = (
        UniqueConstraint("account_id", "ticket_id"),
        Index("ix_ticket_queue", "account_id", "status", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    ticket_id: str = Field(max_length=64, description="the desk's ticket id, e.g. T-1042")
    ticket_kind: str = Field(default=TicketKind.INTERNAL, max_length=10)
    psa_system: str | None = Field(default=None, max_length=40)
    subject: str = Field(max_length=500)
    body: str = ""
    requester: str = Field(default="", max_length=200)
    category: str = Field(default="", max_length=80)
    status: str = Field(default=TicketStatus.OPEN, max_length=20)
    resolution_notes: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    # What a PSA said of a pulled ticket (``rflow psa pull``): its priority, the way back to
    # it, and when the PSA last changed it (an unchanged ticket is not written again).
    priority: str = Field(default="", max_length=80)
    psa_url: str | None = Field(default=None, max_length=1000)
    psa_updated_at: datetime | None = None


class Flow(SQLModel, table=True):
    """An authored decision tree; a new version is a new row with the same slug."""

    __table_args__ = (UniqueConstraint("account_id", "slug", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    slug: str = Field(max_length=120)
    version: int = 1
    title: str = Field(max_length=255)
    category: str = Field(default="", max_length=80)
    match_keywords: list[Any] | None = _json()
    flow_data: dict[str, Any] | None = _json(nullable=False)
    is_current: bool = True
    source_proposal_id: int | None = None
    created_by_user_id: int | None = None
    created_at: datetime = Field(default_factory=utcnow)


class FlowProposal(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    proposal_type: str = Field(default="new_flow", max_length=30)
    source: str = Field(default="", max_length=40)
    status: str = Field(default=ProposalStatus.PENDING, max_length=20, index=True)
    title: str = Field(max_length=255)
    category: str = Field(default="", max_length=80)
    proposed_flow_data: dict[str, Any] | None = _json(nullable=False)
    validated_by_outcome: bool = False
    source_session_id: int | None = None
    ticket_id: str | None = Field(default=None, max_length=64)
    ticket_kind: str | None = Field(default=None, max_length=10)
    target_flow_id: int | None = None
    review_reason: str | None = None
    reviewed_by_user_id: int | None = None
    reviewed_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class L1WalkSession(SQLModel, table=True):
    __tablename__ = "l1_walk_session"
    __table_args__ = (
        Index("ix_session_by_status", "account_id", "status", "resolved_at"),
        Index("ix_session_by_tech", "account_id", "created_by_user_id", "status"),
        # One active walk per ticket: a second one is refused by the store itself.
        Index(
            "uq_active_walk_per_ticket",
            "account_id",
            "ticket_kind",
            "ticket_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    created_by_user_id: int = Field(foreign_key="user.id")
    acting_as: str | None = Field(default=None, max_length=20)
    ticket_id: str = Field(max_length=64)
    ticket_kind: str = Field(default=TicketKind.INTERNAL, max_length=10)
    session_kind: str = Field(max_length=10)
    flow_id: int | None = None
    flow_proposal_id: int | None = None
    category: str | None = Field(default=None, max_length=80)
    problem_text: str | None = None
    status: str = Field(default=WalkStatus.ACTIVE, max_length=10)
    step_count: int = Field(
        default=0,
        sa_column_kwargs={"server_default": "0"},
        description="steps recorded (stepped-back ones included): the next step's seq is this + 1",
    )
    pending_node: dict[str, Any] | None = _json()
    current_node_id: str | None = Field(default=None, max_length=120)
    walk_notes: list[Any] | None = _json(nullable=False)
    step_note_draft: str | None = Field(
        default=None, description="the step note being typed, not yet sent with an answer (kept across a crash)"
    )
    helpful: bool | None = None
    resolution_notes: str | None = None
    escalation_reason: str | None = None
    escalation_reason_category: str | None = Field(default=None, max_length=40)
    created_at: datetime = Field(default_factory=utcnow)
    last_step_at: datetime | None = None
    resolved_at: datetime | None = None
    version: int = Field(
        default=0,
        sa_column_kwargs={"server_default": "0"},
        description="counts changes to the walk's position; a client passes the one it saw (compare-and-set)",
    )
    # An escalation being worked (engineers): who is on it, and how it was closed.
    claimed_by_user_id: int | None = None
    claimed_at: datetime | None = None
    closed_by_user_id: int | None = None
    closed_at: datetime | None = None
    outcome: str | None = Field(default=None, max_length=20)
    outcome_notes: str | None = None


class WalkStepRow(SQLModel, table=True):
    """One step of a walk, appended once (``seq`` from 1) and never rewritten: stepping back
    only marks it ``undone``. ``step`` is the JSON ``WalkStep.to_json`` made (see
    domain/walk_step.py); a walk's steps in ``seq`` order are its walked path."""

    __tablename__ = "walk_step"
    __table_args__ = (
        UniqueConstraint("walk_id", "seq", name="uq_walk_step_seq"),
        Index("ix_walk_step_live", "walk_id", "undone", "seq"),  # the last live step, without a scan
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id")
    walk_id: int = Field(foreign_key="l1_walk_session.id")
    seq: int
    step: dict[str, Any] | None = _json(nullable=False)
    undone: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})


class Notification(SQLModel, table=True):
    """``recipient_user_id`` None: addressed to the desk's owners/admins as a group."""

    __table_args__ = (Index("ix_notification_inbox", "account_id", "recipient_user_id", "read_at"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    recipient_user_id: int | None = Field(default=None, foreign_key="user.id")
    kind: str = Field(max_length=60)
    payload: dict[str, Any] | None = _json()
    created_at: datetime = Field(default_factory=utcnow)
    read_at: datetime | None = None


class EscalationComment(SQLModel, table=True):
    """An engineer's comment on an escalated walk, in the order written."""

    __tablename__ = "escalation_comment"
    __table_args__ = (Index("ix_escalation_comment_thread", "account_id", "session_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id")
    session_id: int = Field(foreign_key="l1_walk_session.id")
    author_user_id: int = Field(foreign_key="user.id")
    body: str
    created_at: datetime = Field(default_factory=utcnow)


class AuditLog(SQLModel, table=True):
    """One change, chained to the account's previous entry (see ``domain.audit_chain``)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ux_audit_chain", "account_id", "seq", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    seq: int = Field(default=0, description="position in the account's chain, from 1")
    actor_user_id: int | None = None
    action: str = Field(max_length=60)
    target_type: str = Field(default="", max_length=40)
    target_id: str | None = Field(default=None, max_length=64)
    details: dict[str, Any] | None = _json()
    created_at: datetime = Field(default_factory=utcnow)
    prev_hash: str = Field(default="", max_length=64)
    row_hash: str = Field(default="", max_length=64)


class AuditHead(SQLModel, table=True):
    """The newest link of an account's audit chain. Every append bumps it first, which
    serialises appenders per account; a chain that no longer reaches it lost its newest rows."""

    __tablename__ = "audit_head"

    account_id: int = Field(foreign_key="account.id", primary_key=True)
    seq: int = 0
    hash: str = Field(max_length=64)


class PsaOutboxItem(SQLModel, table=True):
    """A note (and a status change) a walk's end owes the ticket's PSA, written in the same
    transaction as the end and delivered later, exactly once (its ``idempotency_key`` rides
    on the note as a marker, so a retry after an unclear failure finds it posted)."""

    __tablename__ = "psa_outbox"
    __table_args__ = (Index("ix_psa_outbox_due", "account_id", "state", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    session_id: int = Field(foreign_key="l1_walk_session.id")
    psa_system: str = Field(max_length=40)
    ticket_id: str = Field(max_length=64)
    outcome: str = Field(max_length=20, description="resolved or escalated: which configured status to set")
    note: str
    idempotency_key: str = Field(max_length=64)
    state: str = Field(default="pending", max_length=10)  # pending, delivered, failed
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    last_error: str | None = None
    psa_note_id: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    delivered_at: datetime | None = None


class AlertOutboxItem(SQLModel, table=True):
    """The alert an escalation owes the desk's alert destinations (``[alerts] urls``), written in
    the same transaction as the escalation and delivered later, once per destination: ``sent_to``
    holds each destination's fingerprint (a hash of its URL, never the URL) once it is sent.

    ``facts`` is what the message is made of, as the escalation knew it (ticket subject, reason,
    who escalated, the link back, the tech's notes); whoever delivers decides, by their own
    ``[alerts]``, where it goes and whether the notes go with it."""

    __tablename__ = "alert_outbox"
    __table_args__ = (
        Index("ix_alert_outbox_due", "account_id", "state", "next_attempt_at"),
        UniqueConstraint("session_id", name="uq_alert_outbox_session"),  # one alert per escalation
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    session_id: int = Field(foreign_key="l1_walk_session.id")
    ticket_id: str = Field(max_length=64)
    reason_category: str = Field(max_length=40)
    priority: str = Field(default="", max_length=80)
    facts: dict[str, Any] | None = _json(nullable=False)
    idempotency_key: str = Field(max_length=64)
    state: str = Field(default="pending", max_length=10)  # pending, delivered, failed, skipped
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    last_error: str | None = None
    sent_to: dict[str, Any] | None = _json(nullable=False)  # fingerprint -> {"kind", "state", "at"}
    created_at: datetime = Field(default_factory=utcnow)
    delivered_at: datetime | None = None
