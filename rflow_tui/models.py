"""The store's tables: the spec's fields, each desk's rows carrying ``account_id``."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional, Protocol

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from rflow_tui.domain.enums import ProposalStatus, TicketKind, TicketStatus, WalkStatus
from rflow_tui.domain.walk_step import WalkStep, read_path


def utcnow() -> datetime:
    """Aware UTC: SQLModel's datetime columns refuse naive values."""
    return datetime.now(timezone.utc)


class _Stored(Protocol):
    id: Optional[int]


def row_id(row: _Stored) -> int:
    """The primary key of a row already in the store (SQLModel types it Optional until a flush)."""
    if row.id is None:
        raise ValueError(f"{type(row).__name__} has no id yet: add and flush it first")
    return row.id


def _json(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(JSON, nullable=nullable))


class Account(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow)


class User(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    email: str = Field(max_length=320, unique=True)
    name: str = Field(default="", max_length=200)
    account_role: str = Field(max_length=20)
    coverage: bool = Field(default=False, description="engineer may use the L1 surface")
    is_active: bool = True
    deleted_at: Optional[datetime] = None
    created_at: datetime = Field(default_factory=utcnow)
    db_role: Optional[str] = Field(
        default=None, max_length=63, unique=True, index=True,
        description="PostgreSQL: the database role this person connects as (see migrations/rls.py)",
    )
    os_login: Optional[str] = Field(
        default=None, max_length=64, index=True,
        description="SQLite: the OS login --user may be used from for this person",
    )


class Ticket(SQLModel, table=True):
    """A ticket rflow knows: its own (internal) or a PSA ticket referenced by id."""

    __table_args__ = (
        UniqueConstraint("account_id", "ticket_id"),
        Index("ix_ticket_queue", "account_id", "status", "created_at"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    ticket_id: str = Field(max_length=64, description="the desk's ticket id, e.g. T-1042")
    ticket_kind: str = Field(default=TicketKind.INTERNAL, max_length=10)
    psa_system: Optional[str] = Field(default=None, max_length=40)
    subject: str = Field(max_length=500)
    body: str = ""
    requester: str = Field(default="", max_length=200)
    category: str = Field(default="", max_length=80)
    status: str = Field(default=TicketStatus.OPEN, max_length=20)
    resolution_notes: Optional[str] = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Flow(SQLModel, table=True):
    """An authored decision tree; a new version is a new row with the same slug."""

    __table_args__ = (UniqueConstraint("account_id", "slug", "version"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    slug: str = Field(max_length=120)
    version: int = 1
    title: str = Field(max_length=255)
    category: str = Field(default="", max_length=80)
    match_keywords: Optional[list[Any]] = _json()
    flow_data: Optional[dict[str, Any]] = _json(nullable=False)
    is_current: bool = True
    source_proposal_id: Optional[int] = None
    created_by_user_id: Optional[int] = None
    created_at: datetime = Field(default_factory=utcnow)


class FlowProposal(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    proposal_type: str = Field(default="new_flow", max_length=30)
    source: str = Field(default="", max_length=40)
    status: str = Field(default=ProposalStatus.PENDING, max_length=20, index=True)
    title: str = Field(max_length=255)
    category: str = Field(default="", max_length=80)
    proposed_flow_data: Optional[dict[str, Any]] = _json(nullable=False)
    validated_by_outcome: bool = False
    source_session_id: Optional[int] = None
    ticket_id: Optional[str] = Field(default=None, max_length=64)
    ticket_kind: Optional[str] = Field(default=None, max_length=10)
    target_flow_id: Optional[int] = None
    review_reason: Optional[str] = None
    reviewed_by_user_id: Optional[int] = None
    reviewed_at: Optional[datetime] = None
    created_at: datetime = Field(default_factory=utcnow)


class L1WalkSession(SQLModel, table=True):
    __tablename__ = "l1_walk_session"
    __table_args__ = (
        Index("ix_session_by_status", "account_id", "status", "resolved_at"),
        Index("ix_session_by_tech", "account_id", "created_by_user_id", "status"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    created_by_user_id: int = Field(foreign_key="user.id")
    acting_as: Optional[str] = Field(default=None, max_length=20)
    ticket_id: str = Field(max_length=64)
    ticket_kind: str = Field(default=TicketKind.INTERNAL, max_length=10)
    session_kind: str = Field(max_length=10)
    flow_id: Optional[int] = None
    flow_proposal_id: Optional[int] = None
    category: Optional[str] = Field(default=None, max_length=80)
    problem_text: Optional[str] = None
    status: str = Field(default=WalkStatus.ACTIVE, max_length=10)
    walked_path: Optional[list[Any]] = _json(nullable=False)
    pending_node: Optional[dict[str, Any]] = _json()
    current_node_id: Optional[str] = Field(default=None, max_length=120)
    walk_notes: Optional[list[Any]] = _json(nullable=False)
    helpful: Optional[bool] = None
    resolution_notes: Optional[str] = None
    escalation_reason: Optional[str] = None
    escalation_reason_category: Optional[str] = Field(default=None, max_length=40)
    created_at: datetime = Field(default_factory=utcnow)
    last_step_at: Optional[datetime] = None
    resolved_at: Optional[datetime] = None

    @property
    def steps(self) -> list[WalkStep]:
        """``walked_path`` read as typed steps (the JSON stays the stored form)."""
        return read_path(self.walked_path)


class Notification(SQLModel, table=True):
    """``recipient_user_id`` None: addressed to the desk's owners/admins as a group."""

    id: Optional[int] = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    recipient_user_id: Optional[int] = Field(default=None, foreign_key="user.id")
    kind: str = Field(max_length=60)
    payload: Optional[dict[str, Any]] = _json()
    created_at: datetime = Field(default_factory=utcnow)
    read_at: Optional[datetime] = None


class AuditLog(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: Optional[int] = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    actor_user_id: Optional[int] = None
    action: str = Field(max_length=60)
    target_type: str = Field(default="", max_length=40)
    target_id: Optional[str] = Field(default=None, max_length=64)
    details: Optional[dict[str, Any]] = _json()
    created_at: datetime = Field(default_factory=utcnow)
