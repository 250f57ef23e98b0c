"""The flow library and walking flows: import, versions, matching a ticket, the walk itself.

A flow's stored ``flow_data`` is its whole document (see ``flows.format``); the row
repeats slug, version, title, category and keywords so lists and matching need no
JSON parsing. Walking a ``flow`` or ``proposal`` session follows the document by the
labelled answers; each answered node becomes one ``record_step`` entry, and stepping
back marks the last live entry ``undone`` (history is kept, never rewritten).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rflow_tui.db import write_transaction
from rflow_tui.domain.enums import ASKING_NODE_TYPES, TERMINAL_NODE_TYPES, WALKS_A_TREE, NodeType, WalkKind
from rflow_tui.domain.walk_step import live_steps
from rflow_tui.flows.check import Problem, check_flow, cleaned, review_flow
from rflow_tui.flows.format import FORMAT, answer_labels, exits, labels, next_node_id, node_by_id, position
from rflow_tui.flows.matching import match_score
from rflow_tui.models import Flow, FlowProposal, L1WalkSession, User, utcnow
from rflow_tui.services import audit, sessions
from rflow_tui.services.access import Need, authorize, get_in_account
from rflow_tui.services.errors import InvalidState, StaleWalk, ValidationFailed

STARTER_DIR = Path(__file__).resolve().parent.parent / "data" / "flows"


class FlowProblems(ValidationFailed):
    """A flow document failed its check; ``problems`` lists each one with its JSON path."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s); nothing was imported\n{lines}")


def slugify(text: str) -> str:
    """A stable, URL-safe name for a flow: versions of one flow share it."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:120].strip("-") or "flow"


# --- the library -------------------------------------------------------------------


async def list_flows(db: AsyncSession, *, actor: User, current_only: bool = True) -> list[Flow]:
    """The desk's flows by title; with ``current_only`` False, every version (newest first)."""
    await authorize(db, actor, Need.MEMBER, "read flows")
    stmt = select(Flow).where(Flow.account_id == actor.account_id)
    if current_only:
        stmt = stmt.where(col(Flow.is_current).is_(True))
    stmt = stmt.order_by(func.lower(Flow.title), col(Flow.slug), col(Flow.version).desc())
    return list(await db.exec(stmt))


async def get_flow(db: AsyncSession, *, actor: User, flow_id: int) -> Flow:
    await authorize(db, actor, Need.MEMBER, "read flows")
    return await get_in_account(db, Flow, actor.account_id, id=flow_id, missing=f"flow {flow_id} does not exist")


async def find_flow(db: AsyncSession, *, actor: User, ref: str) -> Flow:
    """A flow named the way people name one: its id (``12``) or its slug (the current version)."""
    if ref.isdigit():
        return await get_flow(db, actor=actor, flow_id=int(ref))
    await authorize(db, actor, Need.MEMBER, "read flows")
    return await get_in_account(
        db, Flow, actor.account_id, slug=ref, is_current=True, missing=f"no flow with id or slug {ref!r}"
    )


def flow_document(flow: Flow) -> dict[str, Any]:
    """The flow as a document to export or walk: its stored data with the row's metadata."""
    doc = dict(flow.flow_data or {})
    doc.update(
        format=FORMAT,
        title=flow.title,
        slug=flow.slug,
        category=flow.category or "",
        match_keywords=list(flow.match_keywords or []),
        version=flow.version,
    )
    order = ("format", "title", "slug", "category", "match_keywords", "version", "description", "start", "nodes")
    return {k: doc[k] for k in order if k in doc}


def _content(doc: dict[str, Any]) -> str:
    """What makes two versions the same flow (the version number itself does not)."""
    return json.dumps({k: v for k, v in doc.items() if k != "version"}, sort_keys=True)


async def _store_flow(
    db: AsyncSession,
    actor: User,
    doc: dict[str, Any],
    *,
    source: str,
    slug: str | None = None,
    source_proposal_id: int | None = None,
    new_version: bool = False,
) -> Flow:
    """Inside the caller's write transaction: a new flow, or (only with ``new_version``) the
    next version of its slug: a flow already in the library is never replaced by accident.

    Importing a document identical to the current version returns that version
    unchanged, so importing the same file twice adds nothing.
    """
    review = review_flow(doc, require_title=True)
    if review.problems:
        raise FlowProblems(source, review.problems)
    doc = cleaned(doc)
    slug = slug or doc.get("slug") or slugify(doc["title"])
    versions = await _versions(db, actor.account_id, slug)
    flow = Flow(
        account_id=actor.account_id,
        slug=slug,
        version=versions[0].version + 1 if versions else 1,
        title=doc["title"].strip(),
        category=(doc.get("category") or "").strip(),
        match_keywords=[k.strip() for k in doc.get("match_keywords") or []],
        is_current=True,
        source_proposal_id=source_proposal_id,
        created_by_user_id=actor.id,
    )
    flow.flow_data = {**doc, "slug": slug, "version": flow.version}
    current = next((f for f in versions if f.is_current), None)
    if current is not None and _content(flow_document(current)) == _content(flow_document(flow)):
        return current
    if not new_version:
        await _refuse_a_silent_replace(db, actor, source, slug, flow.title, versions)
    for old in versions:
        if old.is_current:
            old.is_current = False
            db.add(old)
    db.add(flow)
    await db.flush()
    await audit.record(
        db,
        account_id=actor.account_id,
        actor_user_id=actor.id,
        action="flow.import",
        target_type="flow",
        target_id=flow.id,
        slug=slug,
        version=flow.version,
        source=source[:200],
    )
    for waiver in review.waived:  # each reviewed exception to a safety rule, on the record
        await audit.record(
            db,
            account_id=actor.account_id,
            actor_user_id=actor.id,
            action="flow.safety_waiver",
            target_type="flow",
            target_id=flow.id,
            slug=slug,
            version=flow.version,
            node_id=waiver.node_id,
            rule=waiver.rule_id,
            reason=waiver.reason,
        )
    return flow


async def import_flow_doc(
    db: AsyncSession, *, actor: User, doc: dict[str, Any], source: str, new_version: bool = False
) -> Flow:
    """Check and store one flow document (engineers only); a known slug gets a new version
    only with ``new_version`` (otherwise ValidationFailed says how).

    Raises FlowProblems (a ValidationFailed) listing every problem; nothing is stored then.
    The stored version number is the store's own (previous + 1); a ``version`` in the
    document is informational.
    """
    problems = check_flow(doc, require_title=True)
    if problems:
        raise FlowProblems(source, problems)
    async with write_transaction(db):
        await authorize(db, actor, Need.REVIEW, "import flows")
        flow = await _store_flow(db, actor, doc, source=source, new_version=new_version)
    return flow


async def _versions(db: AsyncSession, account_id: int, slug: str) -> list[Flow]:
    """Every stored version of the flow with this slug, newest first."""
    stmt = select(Flow).where(Flow.account_id == account_id, Flow.slug == slug).order_by(col(Flow.version).desc())
    return list(await db.exec(stmt))


async def _refuse_a_silent_replace(
    db: AsyncSession, actor: User, source: str, slug: str, title: str, versions: list[Flow]
) -> None:
    """A file that would replace a flow (same slug) or pass for one (same title) needs --new-version."""
    if versions:
        raise ValidationFailed(
            f"{source}: the library already has '{slug}' (v{versions[0].version}); nothing was imported. "
            f"To store this file as v{versions[0].version + 1}, import it again with --new-version"
        )
    same_title = (
        await db.exec(
            select(Flow).where(
                Flow.account_id == actor.account_id,
                col(Flow.is_current).is_(True),
                func.lower(Flow.title) == title.lower(),
            )
        )
    ).first()
    if same_title is not None:
        raise ValidationFailed(
            f"{source}: a flow titled '{same_title.title}' is already in the library ('{same_title.slug}' "
            f"v{same_title.version}); nothing was imported. Give this one another title, or set "
            f'"slug": "{same_title.slug}" and import it with --new-version to replace it'
        )


def starter_documents() -> list[tuple[str, dict[str, Any]]]:
    """The shipped starter flows as (file name, document), in file-name order."""
    return [(p.name, json.loads(p.read_text(encoding="utf-8"))) for p in sorted(STARTER_DIR.glob("*.json"))]


async def install_starter_library(db: AsyncSession, *, actor: User) -> list[Flow]:
    """Import every shipped flow in one transaction; one whose slug the desk already has is
    left as it is (the desk may have edited it)."""
    docs = starter_documents()
    async with write_transaction(db):
        await authorize(db, actor, Need.REVIEW, "install flows")
        flows = []
        for name, doc in docs:
            installed = await _versions(db, actor.account_id, doc.get("slug") or slugify(doc["title"]))
            current = next((f for f in installed if f.is_current), None)
            flows.append(current or await _store_flow(db, actor, doc, source=f"starter:{name}"))
    return flows


# --- matching a ticket to flows ------------------------------------------------------


async def match_flows(
    db: AsyncSession, *, actor: User, subject: str, body: str, limit: int = 5
) -> list[tuple[Flow, float]]:
    """Current flows ranked for a ticket, best first (ties by title); flows with no evidence are left out."""
    scored = [(flow, match_score(flow, subject, body)) for flow in await list_flows(db, actor=actor)]
    ranked = sorted((pair for pair in scored if pair[1] > 0), key=lambda p: (-p[1], p[0].title.lower(), p[0].id))
    return ranked[: max(limit, 0)]


# --- walking a flow or a proposal ------------------------------------------------------


async def walk_document(db: AsyncSession, *, actor: User, session_id: int) -> dict[str, Any]:
    """The document a ``flow`` or ``proposal`` session walks (a proposal: its tree_structure)."""
    walk = await sessions.get_session(db, actor=actor, session_id=session_id)
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


def _shown(node: dict[str, Any] | None) -> dict[str, Any] | None:
    """A copy of the node as a screen shows it: a question always carries both labels."""
    if node is None:
        return None
    shown = dict(node)
    if shown.get("type") == NodeType.QUESTION:
        shown["yes_label"], shown["no_label"] = labels(node)
    return shown


def _position(doc: dict[str, Any], walk: L1WalkSession) -> dict[str, Any] | None:
    return _shown(position(doc, live_steps(walk.steps)))


async def current_flow_node(db: AsyncSession, *, actor: User, session_id: int) -> dict[str, Any] | None:
    """The node the tech is on: the start for an empty path, else where the last live step led.

    None only if the document no longer has the node the path points at.
    """
    doc = await walk_document(db, actor=actor, session_id=session_id)
    walk = await sessions.get_session(db, actor=actor, session_id=session_id)
    return _position(doc, walk)


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
    walk = await sessions.get_session(db, actor=actor, session_id=session_id)
    if version is not None and walk.version != version:
        raise StaleWalk("this walk moved on in another window since you saw it; refresh it and answer again")
    node = _position(doc, walk)
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
    await sessions.record_step(
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

    The entry stays in ``walked_path`` with ``undone: true`` and ``undone_at``: the
    transcript keeps every answer given, and ``live_steps`` skips undone ones. Like
    an answer, it moves the walk's version: a window that saw the walk before is
    refused its next answer instead of answering a node the walk has left.
    """
    async with write_transaction(db):
        walk = await sessions._active(db, actor, session_id, WALKS_A_TREE, version)
        steps = walk.steps
        live = [i for i, step in enumerate(steps) if not step.undone]
        if not live:
            raise InvalidState("nothing to step back from: this is the first node of the walk")
        now = utcnow()
        steps[live[-1]] = steps[live[-1]].undo(now)
        walk.walked_path = [step.to_json() for step in steps]
        remaining = live_steps(steps)
        walk.current_node_id = remaining[-1].node_id if remaining else None
        sessions._moved(walk)
        db.add(walk)
        await sessions._audit(
            db, actor, walk, "l1.session.step_back", node_id=steps[live[-1]].node_id, step=live[-1] + 1
        )
    return await current_flow_node(db, actor=actor, session_id=session_id)
