"""The flow library: import with versions, the starter library, listing and finding flows, and
matching a ticket to them.

A flow's stored ``flow_data`` is its whole document (see ``flows.format``); the row
repeats slug, version, title, category and keywords so lists and matching need no
JSON parsing.
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
from rflow_tui.flows.check import Problem, check_flow, cleaned, review_flow
from rflow_tui.flows.format import FORMAT
from rflow_tui.flows.matching import match_score
from rflow_tui.models import Flow, User
from rflow_tui.services import audit
from rflow_tui.services.access import Need, authorize, get_in_account
from rflow_tui.services.errors import ValidationFailed

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
    await audit.record_change(
        db,
        actor,
        "flow.import",
        "flow",
        flow.id,
        slug=slug,
        version=flow.version,
        source=source[:200],
    )
    for waiver in review.waived:  # each reviewed exception to a safety rule, on the record
        await audit.record_change(
            db,
            actor,
            "flow.safety_waiver",
            "flow",
            flow.id,
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


async def match_flows(
    db: AsyncSession, *, actor: User, subject: str, body: str, limit: int = 5
) -> list[tuple[Flow, float]]:
    """Current flows ranked for a ticket, best first (ties by title); flows with no evidence are left out."""
    scored = [(flow, match_score(flow, subject, body)) for flow in await list_flows(db, actor=actor)]
    ranked = sorted((pair for pair in scored if pair[1] > 0), key=lambda p: (-p[1], p[0].title.lower(), p[0].id))
    return ranked[: max(limit, 0)]
