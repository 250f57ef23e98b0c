"""The numbers behind every node, from the walks already stored.

Per node of one version of a flow: how many walks reached it, how its answers split,
the median time a tech spent on it (from the step before it to its answer), and how
many of the walks that reached it ended escalated or were abandoned. Per version: the
walks, the resolution rate (resolved of those that ended) and the median walk time.

A walk still active with no step for ``ABANDONED_AFTER`` is abandoned. Steps written
before steps carried their time (``WalkStep.at``) count everywhere except in the
time on the step.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import load_only
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rflow_tui.domain.enums import WalkKind, WalkStatus
from rflow_tui.domain.walk_step import WalkStep, live_steps
from rflow_tui.flows.format import position
from rflow_tui.models import Flow, L1WalkSession, User, row_id, utcnow
from rflow_tui.services.access import Need, authorize
from rflow_tui.services.errors import NotFound
from rflow_tui.services.walks.path import steps_by_walk

ABANDONED_AFTER = timedelta(hours=24)


def aware(when: datetime) -> datetime:
    """UTC, whichever way the store handed the time back."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


@dataclass
class NodeStats:
    node_id: str
    node_type: str
    text: str
    reached: int = 0
    answers: Counter[str] = field(default_factory=Counter)  # by the button's label
    seconds_on_step: list[float] = field(default_factory=list)
    escalated: int = 0
    abandoned: int = 0

    @property
    def median_seconds(self) -> float | None:
        return statistics.median(self.seconds_on_step) if self.seconds_on_step else None


@dataclass(frozen=True)
class VersionStats:
    version: int
    walks: int
    resolved: int
    escalated: int
    abandoned: int
    median_walk_seconds: float | None

    @property
    def in_progress(self) -> int:
        return self.walks - self.resolved - self.escalated - self.abandoned

    @property
    def resolution_rate(self) -> float | None:
        """Resolved of the walks that ended (resolved or escalated); None before any ended."""
        ended = self.resolved + self.escalated
        return self.resolved / ended if ended else None


@dataclass(frozen=True)
class FlowStats:
    slug: str
    title: str
    version: int  # the version the nodes are counted for
    versions: list[VersionStats]  # newest first
    nodes: list[NodeStats]  # in the flow's own order


@dataclass(frozen=True)
class _Walk:
    """What the numbers need of one stored walk (its notes and texts stay unread)."""

    flow_id: int
    status: str
    steps: list[WalkStep]
    created_at: datetime
    last_step_at: datetime | None
    resolved_at: datetime | None

    def abandoned(self, now: datetime) -> bool:
        last = aware(self.last_step_at or self.created_at)
        return self.status == WalkStatus.ACTIVE and now - last > ABANDONED_AFTER


async def flow_stats(db: AsyncSession, *, actor: User, slug: str, version: int | None = None) -> FlowStats:
    """The numbers for the flow ``slug``, its nodes counted for ``version`` (default: current)."""
    await authorize(db, actor, Need.REVIEW, "see flow statistics")
    versions = list(
        await db.exec(
            select(Flow)
            .where(Flow.account_id == actor.account_id, Flow.slug == slug)
            .order_by(col(Flow.version).desc())
        )
    )
    if not versions:
        raise NotFound(f"no flow with slug {slug!r}")
    chosen = next((f for f in versions if f.version == version), None) if version else versions[0]
    if chosen is None:
        raise NotFound(f"flow {slug!r} has no version {version} (it has {', '.join(str(f.version) for f in versions)})")
    walks = await _walks(db, actor.account_id, [f.id for f in versions if f.id is not None])
    now = utcnow()
    by_version = [_version_stats(flow.version, [w for w in walks if w.flow_id == flow.id], now) for flow in versions]
    nodes = _node_stats(chosen.flow_data or {}, [w for w in walks if w.flow_id == chosen.id], now)
    return FlowStats(slug, chosen.title, chosen.version, by_version, nodes)


async def _walks(db: AsyncSession, account_id: int, flow_ids: Sequence[int]) -> list[_Walk]:
    needed: tuple[Any, ...] = (  # a walk's notes may be 256 KiB each: never loaded here
        L1WalkSession.flow_id,
        L1WalkSession.status,
        L1WalkSession.created_at,
        L1WalkSession.last_step_at,
        L1WalkSession.resolved_at,
    )
    rows = await db.exec(
        select(L1WalkSession)
        .options(load_only(*needed))
        .where(
            L1WalkSession.account_id == account_id,
            L1WalkSession.session_kind == WalkKind.FLOW,
            col(L1WalkSession.flow_id).in_(flow_ids),
        )
    )
    walks = list(rows)
    steps = await steps_by_walk(db, account_id, [row_id(w) for w in walks])
    return [
        _Walk(
            w.flow_id or 0,
            w.status,
            live_steps(steps[row_id(w)]),
            w.created_at,
            w.last_step_at,
            w.resolved_at,
        )
        for w in walks
    ]


def _version_stats(version: int, walks: list[_Walk], now: datetime) -> VersionStats:
    durations = [
        (aware(w.resolved_at) - aware(w.created_at)).total_seconds()
        for w in walks
        if w.status != WalkStatus.ACTIVE and w.resolved_at is not None
    ]
    return VersionStats(
        version=version,
        walks=len(walks),
        resolved=sum(w.status == WalkStatus.RESOLVED for w in walks),
        escalated=sum(w.status == WalkStatus.ESCALATED for w in walks),
        abandoned=sum(w.abandoned(now) for w in walks),
        median_walk_seconds=statistics.median(durations) if durations else None,
    )


def _node_stats(doc: dict[str, Any], walks: list[_Walk], now: datetime) -> list[NodeStats]:
    nodes: list[Any] = doc.get("nodes") or []
    stats = {
        node["id"]: NodeStats(node["id"], node["type"], node.get("text", ""))
        for node in nodes
        if isinstance(node, dict) and isinstance(node.get("id"), str)
    }
    for walk in walks:
        reached = [step.node_id for step in walk.steps]
        at = position(doc, walk.steps)  # shown and not answered: where it stopped, or the end it reached
        if at is not None:
            reached.append(at["id"])
        abandoned = walk.abandoned(now)
        for node_id in dict.fromkeys(reached):  # a loop reaches a node once per walk
            node = stats.get(node_id)
            if node is None:
                continue
            node.reached += 1
            node.escalated += walk.status == WalkStatus.ESCALATED
            node.abandoned += abandoned
        shown_at: datetime | None = aware(walk.created_at)
        for step in walk.steps:
            node = stats.get(step.node_id)
            answered = aware(datetime.fromisoformat(step.at)) if step.at else None
            if node is not None:
                if step.answer_label is not None:  # by the button the tech pressed
                    node.answers[step.answer_label] += 1
                if answered is not None and shown_at is not None and answered >= shown_at:
                    # (a step "before" the one it followed: two writers' clocks disagree; not a time on it)
                    node.seconds_on_step.append((answered - shown_at).total_seconds())
            shown_at = answered  # unknown once a step has no time: the next one is not timed
    return list(stats.values())
