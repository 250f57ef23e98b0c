"""Reviewing flow proposals: the flywheel's last step, where engineers promote a
helpful AI walk into a flow (or a new version of one) or reject it with a reason.

Anyone on the desk may list and read pending proposals (techs walk them); only
owners, admins and engineers may approve or reject. A proposal's
``proposed_flow_data`` is ``{"tree_structure": <flow document>, "match_keywords": [...]}``;
the tree carries no title or category, so approval adds them from the proposal
(or from the arguments) before the flow is checked and stored.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rflow_tui.db import write_transaction
from rflow_tui.domain.enums import ProposalStatus
from rflow_tui.flows.format import LIMITS
from rflow_tui.flows.walked_path import mark_ai_origin
from rflow_tui.models import Flow, FlowProposal, L1WalkSession, User, utcnow
from rflow_tui.services import audit
from rflow_tui.services.access import Need, authorize, get_in_account, in_account
from rflow_tui.services.errors import InvalidState, ValidationFailed
from rflow_tui.services.fields import accepted, accepted_line
from rflow_tui.services.library import _store_flow, slugify
from rflow_tui.text import clean

REASON_CAP = 4000


async def list_pending(db: AsyncSession, *, actor: User) -> list[FlowProposal]:
    """Pending proposals, oldest first (the review queue)."""
    await authorize(db, actor, Need.MEMBER, "read proposals")
    rows = await db.exec(
        select(FlowProposal)
        .where(FlowProposal.account_id == actor.account_id, FlowProposal.status == ProposalStatus.PENDING)
        .order_by(col(FlowProposal.created_at).asc(), col(FlowProposal.id).asc())
    )
    return list(rows)


async def match_proposals(
    db: AsyncSession, *, actor: User, subject: str, body: str, limit: int = 5
) -> list[tuple[FlowProposal, float]]:
    """Pending proposals that fit a ticket, best first, scored like flows; unrelated ones are left out."""
    from rflow_tui.flows.matching import match_score

    scored = []
    for proposal in await list_pending(db, actor=actor):
        keywords = (proposal.proposed_flow_data or {}).get("match_keywords") or []
        stand_in = Flow(
            account_id=proposal.account_id,
            slug="",
            title=proposal.title,
            category=proposal.category,
            match_keywords=keywords,
        )
        score = match_score(stand_in, subject, body)
        if score > 0:
            scored.append((proposal, score))
    scored.sort(key=lambda pair: (-pair[1], pair[0].id))
    return scored[: max(limit, 0)]


async def get_proposal(db: AsyncSession, *, actor: User, proposal_id: int, lock: bool = False) -> FlowProposal:
    await authorize(db, actor, Need.MEMBER, "read proposals")
    return await get_in_account(
        db,
        FlowProposal,
        actor.account_id,
        id=proposal_id,
        lock=lock,
        missing=f"flow proposal {proposal_id} does not exist",
    )


async def source_session(db: AsyncSession, *, actor: User, proposal: FlowProposal) -> L1WalkSession | None:
    """The walk a proposal was captured from (its outcome, notes, tech), if it still exists."""
    await authorize(db, actor, Need.MEMBER, "read proposals")
    if proposal.source_session_id is None:
        return None
    return await in_account(db, L1WalkSession, actor.account_id, id=proposal.source_session_id)


def proposal_tree(proposal: FlowProposal) -> dict[str, Any]:
    """The proposal's tree as a flow document (what the review screen draws)."""
    return dict((proposal.proposed_flow_data or {}).get("tree_structure") or {})


def _pending(proposal: FlowProposal) -> None:
    if proposal.status != ProposalStatus.PENDING:
        raise InvalidState(f"flow proposal {proposal.id} is already {proposal.status}")


async def _free_slug(db: AsyncSession, account_id: int, base: str) -> str:
    taken = set(await db.exec(select(Flow.slug).where(Flow.account_id == account_id, col(Flow.slug).startswith(base))))
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base[:110]}-{n}", n + 1
    return slug


async def approve(
    db: AsyncSession,
    *,
    actor: User,
    proposal_id: int,
    title: str | None = None,
    slug: str | None = None,
    target_flow_id: int | None = None,
) -> Flow:
    """Promote a pending proposal into the library and return the new flow.

    With ``target_flow_id`` (or the proposal's own target) the tree becomes the next
    version of that flow, keeping its slug, category and keywords unless the proposal
    has its own. Otherwise it becomes a new flow; a ``slug`` that is already taken is
    refused (say which flow to version instead), a slug made from the title gets a
    number. The flow is checked like any import; a failing tree is refused, the
    proposal stays pending.
    """
    if title is not None:
        title = accepted_line(title, "the title")
        if not title:
            raise ValidationFailed("the flow needs a title")
    async with write_transaction(db):
        await authorize(db, actor, Need.REVIEW, "approve proposals")
        proposal = await get_proposal(db, actor=actor, proposal_id=proposal_id, lock=True)
        _pending(proposal)
        data = proposal.proposed_flow_data or {}
        doc = mark_ai_origin(proposal_tree(proposal))  # a proposal is an AI walk: never waivable
        keywords = [k for k in data.get("match_keywords") or [] if isinstance(k, str) and k.strip()]
        target_id = target_flow_id or proposal.target_flow_id
        if target_id is not None:
            target = await get_in_account(
                db, Flow, actor.account_id, id=target_id, missing=f"flow {target_id} does not exist"
            )
            flow_slug = target.slug
            doc.update(
                title=(title or target.title).strip()[: LIMITS.title],
                category=proposal.category or target.category or "",
                match_keywords=keywords or list(target.match_keywords or []),
            )
        else:
            doc.update(
                title=clean(title or proposal.title or "AI L1 resolution", single_line=True)[: LIMITS.title],
                category=proposal.category or "",
                match_keywords=keywords,
            )
            if slug:
                flow_slug = slugify(slug)
                if (
                    await db.exec(select(Flow.id).where(Flow.account_id == actor.account_id, Flow.slug == flow_slug))
                ).first():
                    raise ValidationFailed(
                        f"the slug '{flow_slug}' belongs to an existing flow; choose another, or pass "
                        "that flow as the target to add a new version of it"
                    )
            else:
                flow_slug = await _free_slug(db, actor.account_id, slugify(doc["title"]))
        doc.pop("slug", None)
        doc.pop("version", None)
        flow = await _store_flow(
            db,
            actor,
            doc,
            source=f"proposal {proposal.id}",
            slug=flow_slug,
            source_proposal_id=proposal.id,
            new_version=True,  # the reviewer chose: the target's next version, or a free slug
        )
        proposal.status = ProposalStatus.APPROVED
        proposal.target_flow_id = target_id
        proposal.reviewed_by_user_id = actor.id
        proposal.reviewed_at = utcnow()
        db.add(proposal)
        await audit.record_change(
            db,
            actor,
            "proposal.approve",
            "flow_proposal",
            proposal.id,
            flow_id=flow.id,
            slug=flow.slug,
            version=flow.version,
            new_version_of=target_id,
        )
    return flow


async def reject(db: AsyncSession, *, actor: User, proposal_id: int, reason: str) -> FlowProposal:
    """Close a pending proposal with the reviewer's reason (kept on the proposal and audited)."""
    reason = accepted(reason, "the reason")
    if not reason.strip():
        raise ValidationFailed("say why the proposal is rejected")
    if len(reason) > REASON_CAP:
        raise ValidationFailed(f"the reason is {len(reason):,} characters; the limit is {REASON_CAP:,}")
    async with write_transaction(db):
        await authorize(db, actor, Need.REVIEW, "reject proposals")
        proposal = await get_proposal(db, actor=actor, proposal_id=proposal_id, lock=True)
        _pending(proposal)
        proposal.status = ProposalStatus.REJECTED
        proposal.review_reason = reason.strip()
        proposal.reviewed_by_user_id = actor.id
        proposal.reviewed_at = utcnow()
        db.add(proposal)
        await audit.record_change(
            db,
            actor,
            "proposal.reject",
            "flow_proposal",
            proposal.id,
            reason=proposal.review_reason,
        )
    return proposal
