"""The steps of a live AI build: an answer recorded, the next node generated, checked by both
safety layers, and served with a token that a stale window cannot answer."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlmodel.ext.asyncio.session import AsyncSession

from rflow_tui.ai.base import NodeContext, NodeGenerator
from rflow_tui.ai.deadline import DEFAULT_STEP_SECONDS
from rflow_tui.ai.judge import NodeJudge
from rflow_tui.db import write_transaction
from rflow_tui.domain.enums import (
    TERMINAL_NODE_TYPES,
    Answer,
    NodeType,
    WalkKind,
    WalkStatus,
)
from rflow_tui.domain.walk_step import StepSource, WalkStep
from rflow_tui.models import L1WalkSession, User
from rflow_tui.services.access import Need, authorize
from rflow_tui.services.errors import (
    InvalidState,
    StaleWalk,
    ValidationFailed,
)
from rflow_tui.services.walks.core import (
    STEP_NOTE_CAP,
    active_walk,
    append_step,
    audit_walk,
    check_len,
    load_walk,
    mark_moved,
)
from rflow_tui.services.walks.path import walk_steps_of

if TYPE_CHECKING:
    from rflow_tui.ai.generate import CheckedNode
    from rflow_tui.ai.usage import Meter


async def advance_ai_build(
    db: AsyncSession,
    *,
    actor: User,
    session_id: int,
    generator: NodeGenerator,
    judge: NodeJudge | None,
    node_id: str | None = None,
    token: str | None = None,
    answer: str | None = None,
    note: str | None = None,
    version: int | None = None,
    deadline_seconds: float | None = DEFAULT_STEP_SECONDS,
) -> dict[str, Any]:
    """Answer the pending node (if ``token``) and return the next one.

    Every served node carries a ``token`` made here; an answer passes it back (and
    may pass ``node_id`` too, checked as well). With neither and a pending node, the
    pending node comes back unchanged: no new generator call while a served node is
    unanswered. A new node is stored (and so shown) only once the rules and the
    ``judge`` both passed it; ``judge`` is required so that no caller skips layer 2 by
    forgetting it (None: the desk turned it off). The generator and the judge run
    outside any transaction (they may take seconds); if either fails, the answer is
    already saved and calling again with no token retries. ``deadline_seconds`` bounds
    the generation (every attempt and the judge): past it, GenerationTimeoutError.

    The three phases are also callable alone (``answer_ai_node``, the generation,
    ``serve_ai_node``), so a screen can stop the generation without touching the store.
    """
    from rflow_tui.ai.step import next_node
    from rflow_tui.ai.usage import Meter, metered

    step = await answer_ai_node(
        db, actor=actor, session_id=session_id, node_id=node_id, token=token, answer=answer, note=note, version=version
    )
    if step.served is not None:
        return step.served
    meter = Meter()
    with metered(meter):
        checked = await next_node(generator, step.context, judge, deadline_seconds=deadline_seconds)
    return await serve_ai_node(
        db, actor=actor, session_id=session_id, step=step, checked=checked, judge=judge, meter=meter
    )


@dataclass(frozen=True)
class AiStep:
    """An AI walk after ``answer_ai_node``: ``served`` is a node to show now (the pending
    one replayed, or a prefetched one just stored), else ``context`` is what the next node
    is generated from, at the walk's ``version``; ``walk`` is the walk as stored."""

    served: dict[str, Any] | None
    context: NodeContext
    version: int
    walk: L1WalkSession


async def answer_ai_node(
    db: AsyncSession,
    *,
    actor: User,
    session_id: int,
    node_id: str | None = None,
    token: str | None = None,
    answer: str | None = None,
    note: str | None = None,
    version: int | None = None,
    prefetched: CheckedNode | None = None,
    judge: NodeJudge | None = None,
    meter: Meter | None = None,
) -> AiStep:
    """Store the answer to the pending node (named by its ``token``), or with no token find
    the pending node to replay. See ``advance_ai_build``.

    ``prefetched``: a node written ahead for this answer. When it fits the context the
    answer leads to (the same prompt, passed by this desk's ``judge``) it is stored as the
    pending node in the same transaction; otherwise it is ignored and the caller generates.
    ``meter``: what the walk's model calls cost since the last node was served, kept with the
    node served here (``_serve``).
    """
    note = check_len(note, STEP_NOTE_CAP, "the step note")
    if node_id is not None and token is None:
        raise ValidationFailed("answer a node with the token it was served with (node ids can repeat)")
    async with write_transaction(db):
        walk = await active_walk(db, actor, session_id, (WalkKind.AI_BUILD,), version)
        pending = walk.pending_node
        if token is None:
            if pending is not None:
                if not pending.get("token"):  # served before nodes carried tokens
                    walk.pending_node = pending = {**pending, "token": _new_token()}
                    db.add(walk)
                return AiStep(pending, await _context(db, walk), walk.version, walk)
        else:
            if pending is None or pending.get("token") != token or node_id not in (None, pending.get("id")):
                raise StaleWalk(
                    f"that is not the question waiting in session {session_id}; "
                    "it was answered already or replaced (refresh the walk)"
                )
            if pending.get("type") in TERMINAL_NODE_TYPES:
                raise InvalidState("this walk has reached its end: resolve or escalate it")
            if pending.get("type") == NodeType.QUESTION and answer not in tuple(Answer):
                raise ValidationFailed("answer a question with 'yes' or 'no'")
            seq = append_step(db, walk, WalkStep.answering(StepSource.AI, pending, answer, note))
            walk.pending_node = None
            db.add(walk)
            await audit_walk(db, actor, walk, "l1.session.step", node_id=node_id, answer=answer, step=seq)
        context = await _context(db, walk)
        if prefetched is not None and _is_checked(prefetched, judge) and prefetched.fits(context, judge):
            node = await _serve(db, actor, walk, prefetched, prefetched=True, meter=meter)
            return AiStep(node, context, walk.version, walk)
        return AiStep(None, context, walk.version, walk)


async def ai_prefetch_contexts(
    db: AsyncSession, *, actor: User, session_id: int, token: str
) -> dict[str | None, NodeContext]:
    """For each answer of the pending node named by ``token``, the context its next node
    would be written from, were it chosen now with no step note: what a prefetch writes
    for ("yes"/"no" for a question, None for an instruction's "done", nothing at an end).

    Reads only: nothing is stored until an answer is chosen (``answer_ai_node``).
    """
    await authorize(db, actor, Need.WALK, "walk tickets")
    walk = await load_walk(db, actor, session_id)
    pending = walk.pending_node
    if walk.status != WalkStatus.ACTIVE or walk.session_kind != WalkKind.AI_BUILD or pending is None:
        return {}
    if pending.get("token") != token:
        return {}
    from rflow_tui.ai.prefetch import answer_contexts

    return answer_contexts(await _context(db, walk), pending)


async def _context(db: AsyncSession, walk: L1WalkSession) -> NodeContext:
    """What the next node is written from: the whole path (the prompt needs every step)."""
    steps = await walk_steps_of(db, walk)
    return NodeContext(problem_text=walk.problem_text or "", category=walk.category or "", walked_path=steps)


async def serve_ai_node(
    db: AsyncSession,
    *,
    actor: User,
    session_id: int,
    step: AiStep,
    checked: CheckedNode,
    judge: NodeJudge | None,
    meter: Meter | None = None,
) -> dict[str, Any]:
    """Store ``checked`` as the pending node (with a fresh token) and return it, with what
    ``meter`` counted since the last node was served as its cost.

    Only a ``CheckedNode`` passed by this desk's ``judge`` is accepted. If another
    window served or answered a node since ``step``, theirs stands.
    """
    if not _is_checked(checked, judge):
        raise InvalidState("an AI node is served only after the rules and this desk's safety judge passed it")
    async with write_transaction(db):
        walk = await active_walk(db, actor, session_id, (WalkKind.AI_BUILD,))
        if walk.version != step.version:
            if walk.pending_node is not None:
                return walk.pending_node
            raise StaleWalk("this walk moved on in another window; refresh it")
        return await _serve(db, actor, walk, checked, prefetched=False, meter=meter)


def _is_checked(checked: Any, judge: NodeJudge | None) -> bool:
    """A ``CheckedNode`` (sealed by ai.generate) that this desk's judge passed."""
    from rflow_tui.ai.generate import CheckedNode

    return isinstance(checked, CheckedNode) and checked.judge is judge


async def _serve(
    db: AsyncSession,
    actor: User,
    walk: L1WalkSession,
    checked: CheckedNode,
    *,
    prefetched: bool,
    meter: Meter | None = None,
) -> dict[str, Any]:
    """Store a checked node as the walk's pending node, with a fresh token and what it cost
    (``ai_tokens``: it goes into the step that answers it), inside the caller's transaction."""
    node = {**checked.node, "token": _new_token()}
    tokens = meter.take() if meter is not None else {}
    if tokens:
        node["ai_tokens"] = tokens
    walk.pending_node = node
    walk.current_node_id = node["id"]
    mark_moved(walk)
    db.add(walk)
    await audit_walk(
        db,
        actor,
        walk,
        "l1.session.node",
        node_id=node["id"],
        node_type=node.get("type"),
        prefetched=prefetched,
        **({"tokens": tokens} if tokens else {}),
    )
    return node


def _new_token() -> str:
    """Names one served node for the answer to it; never reused, unlike a model's ids."""
    return secrets.token_hex(8)
