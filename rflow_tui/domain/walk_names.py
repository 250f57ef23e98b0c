"""How a walk's kind reads for a person, wherever it is shown or exported: never the stored
value, and an escalation made without a walk called that, never an ad-hoc walk."""

from __future__ import annotations

from typing import Any

from rflow_tui.domain.enums import WALK_KIND_NAMES, WalkKind, WalkStatus

NO_WALK = "Escalated without a walk"


def escalated_without_walk(walk: Any) -> bool:
    """``escalate_without_walk`` wrote it: an ad-hoc walk born escalated with no step, started and
    ended in the same instant (a walk that was started ends later, in another transaction)."""
    return (
        walk.session_kind == WalkKind.ADHOC
        and walk.status == WalkStatus.ESCALATED
        and not walk.step_count
        and walk.resolved_at is not None
        and walk.created_at == walk.resolved_at
    )


def kind_name(walk: Any) -> str:
    if escalated_without_walk(walk):
        return NO_WALK
    return str(WALK_KIND_NAMES.get(walk.session_kind, walk.session_kind))
