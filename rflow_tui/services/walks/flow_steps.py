"""Walking an authored flow or a proposal by its labelled answers: each answered node becomes
one ``record_step`` row, and stepping back marks the last live row ``undone``."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from rflow_tui.db import write_transaction
from rflow_tui.domain.enums import ASKING_NODE_TYPES, TERMINAL_NODE_TYPES, WALKS_A_TREE, NodeType, WalkKind
from rflow_tui.domain.walk_step import read_path
from rflow_tui.flows.check import unwaived_findings
from rflow_tui.flows.format import answer_labels, exits, labels, next_node_id, node_by_id, position
from rflow_tui.models import FlowProposal, L1WalkSession, User, utcnow
from rflow_tui.services.access import get_in_account
from rflow_tui.services.errors import InvalidState, StaleWalk, ValidationFailed
from rflow_tui.services.library import flow_document, get_flow
from rflow_tui.services.walks.core import active_walk, audit_walk, get_session, mark_moved
from rflow_tui.services.walks.path import last_live_row, last_live_step, mark_undone
from rflow_tui.services.walks.steps import record_step


async def walk_document(db: AsyncSession, *, actor: User, session_id: int) -> dict[str, Any]:
    """The document a ``flow`` or ``proposal`` session walks (a proposal: its tree_structure)."""
    walk = await get_session(db, actor=actor, session_id=session_id)
    if walk.session_kind == WalkKind.FLOW:
        if walk.flow_id is None:
            raise InvalidState(f"walk session {session_id} is a flow walk with no flow; escalate it")
        return flow_document(await get_flow(db, actor=actor, flow_id=walk.flow_id))
    if walk.session_kind == WalkKind.PROPOSAL:
        proposal = await get_in_account(
            db,
            FlowProposal,
            actor.account_id,
            id=walk.flow_proposal_id,
            missing=f"the proposal walked by session {session_id} no longer exists",
        )
        return dict((proposal.proposed_flow_data or {}).get("tree_structure") or {})
    raise InvalidState(f"walk session {session_id} is an {walk.session_kind} session; it walks no flow")


WITHHELD_ID = "withheld-by-the-safety-rules"


def _shown(node: dict[str, Any] | None) -> dict[str, Any] | None:
    """A copy of the node as a screen shows it: a question always carries both labels. A node
    the safety rules refuse (changed since the flow was checked) is never shown: an escalate
    node naming the rule stands in for it."""
    if node is None:
        return None
    broken = unwaived_findings(node)
    if broken:
        named = "; ".join(f"{finding.description} (rule {finding.rule_id})" for finding in broken)
        return {
            "id": WITHHELD_ID,
            "type": NodeType.ESCALATE.value,
            "text": f"This step of the flow is not shown: it breaks a safety rule ({named}). Escalate the "
            "ticket, and tell whoever looks after the flows.",
        }
    shown = dict(node)
    if shown.get("type") == NodeType.QUESTION:
        shown["yes_label"], shown["no_label"] = labels(node)
    return shown


async def _position(db: AsyncSession, doc: dict[str, Any], walk: L1WalkSession) -> dict[str, Any] | None:
    """Where the walk stands: only its last live step decides it (one indexed read)."""
    last = await last_live_step(db, walk)
    return _shown(position(doc, [last] if last else []))


async def current_flow_node(db: AsyncSession, *, actor: User, session_id: int) -> dict[str, Any] | None:
    """The node the tech is on: the start for an empty path, else where the last live step led.

    None only if the document no longer has the node the path points at.
    """
    doc = await walk_document(db, actor=actor, session_id=session_id)
    walk = await get_session(db, actor=actor, session_id=session_id)
    return await _position(db, doc, walk)


async def answer_flow_node(
    db: AsyncSession,
    *,
    actor: User,
    session_id: int,
    answer: str | None,
    note: str | None = None,
    node_id: str | None = None,
    version: int | None = None,
) -> dict[str, Any] | None:
    """Record the current node with its answer (``yes``/``no``; None acknowledges an
    instruction) and return the next node. A terminal node comes back as a node: the
    walk then ends by resolve or escalate. Pass ``node_id`` (the node the screen shows)
    and ``version`` (the walk's version it showed) to be refused if another window
    moved the walk on meanwhile, a step back included.
    """
    doc = await walk_document(db, actor=actor, session_id=session_id)
    walk = await get_session(db, actor=actor, session_id=session_id)
    if version is not None and walk.version != version:
        raise StaleWalk("this walk moved on in another window since you saw it; refresh it and answer again")
    node = await _position(db, doc, walk)
    if node is None:
        raise InvalidState(f"walk session {session_id} points at a node its flow does not have; escalate it")
    if node_id is not None and node.get("id") != node_id:
        raise StaleWalk("this walk moved on in another window; refresh it")
    kind = node.get("type")
    if kind in TERMINAL_NODE_TYPES:
        raise InvalidState("this walk has reached its end: resolve or escalate it")
    yes_label, no_label = labels(node)
    offered = [a for a, _label, _target in exits(node) if a is not None]
    if kind in ASKING_NODE_TYPES:
        if answer not in offered:
            raise ValidationFailed(f"answer this {kind} with one of {', '.join(offered)}")
    else:
        answer = None
    await record_step(
        db,
        actor=actor,
        session_id=session_id,
        node_id=node["id"],
        question=node.get("text", ""),
        answer=answer,
        note=note,
        yes_label=yes_label,
        no_label=no_label,
        options=answer_labels(node) if kind == NodeType.CHOICE else None,
        version=walk.version,
    )
    return _shown(node_by_id(doc, next_node_id(node, answer)))


async def step_back(
    db: AsyncSession, *, actor: User, session_id: int, version: int | None = None
) -> dict[str, Any] | None:
    """Undo the last live step and return the node now current (the one that step answered).

    The step's row stays with ``undone: true`` and ``undone_at`` (one UPDATE of that
    row): the transcript keeps every answer given, and ``live_steps`` skips undone ones.
    Like an answer, it moves the walk's version: a window that saw the walk before is
    refused its next answer instead of answering a node the walk has left.
    """
    async with write_transaction(db):
        walk = await active_walk(db, actor, session_id, WALKS_A_TREE, version)
        row = await last_live_row(db, walk)
        if row is None:
            raise InvalidState("nothing to step back from: this is the first node of the walk")
        undone = mark_undone(db, row, utcnow())
        previous = await last_live_row(db, walk, before=row.seq)
        walk.current_node_id = read_path([previous.step or {}])[0].node_id if previous else None
        mark_moved(walk)
        db.add(walk)
        await audit_walk(db, actor, walk, "l1.session.step_back", node_id=undone.node_id, step=row.seq)
    return await current_flow_node(db, actor=actor, session_id=session_id)
