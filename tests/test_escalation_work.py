"""Engineers work an escalation through the service layer: claim, release, take over,
comment, close with an outcome, reopen. Each is audited, checks rights afresh and
stays in one account. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import col, select

from rflow_tui.models import AuditLog, L1WalkSession, Ticket
from rflow_tui.services import escalations as esc
from rflow_tui.services.errors import AccessDenied, InvalidState, NotFound, PayloadTooLarge, ValidationFailed
from rflow_tui.services.users import update_user
from rflow_tui.services.walks import endings as walk_endings
from rflow_tui.services.walks import start as walk_start
from tests.conftest import make_desk


async def escalated(db, desk, ticket_id: str = "T-1") -> L1WalkSession:
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id=ticket_id)
    return await walk_endings.escalate(
        db, actor=desk.tech, session_id=walk.id, reason="dead fan", reason_category="hardware"
    )


async def actions(db, walk_id: int) -> list[tuple[str, int | None]]:
    rows = await db.exec(
        select(AuditLog)
        .where(AuditLog.target_id == str(walk_id), col(AuditLog.action).startswith("escalation."))
        .order_by(col(AuditLog.seq))
    )
    return [(row.action, row.actor_user_id) for row in rows]


async def ticket_status(db, account_id: int, ticket_id: str) -> str:
    ticket = (
        await db.exec(
            select(Ticket)
            .where(Ticket.account_id == account_id, Ticket.ticket_id == ticket_id)
            .execution_options(populate_existing=True)
        )
    ).one()
    return ticket.status


async def test_claim_shows_who_is_on_it_and_a_second_engineer_is_told_who(db, desk):
    walk = await escalated(db, desk)
    claimed = await esc.claim(db, actor=desk.engineer, session_id=walk.id)
    assert claimed.claimed_by_user_id == desk.engineer.id and claimed.claimed_at is not None
    again = await esc.claim(db, actor=desk.engineer, session_id=walk.id)  # claiming twice changes nothing
    assert again.claimed_at == claimed.claimed_at
    with pytest.raises(esc.ClaimedByOther, match=r"eng@contoso\.test is already on escalation") as refused:
        await esc.claim(db, actor=desk.admin, session_id=walk.id)
    assert refused.value.claimed_by_user_id == desk.engineer.id
    taken = await esc.claim(db, actor=desk.admin, session_id=walk.id, take_over=True)
    assert taken.claimed_by_user_id == desk.admin.id
    claims = list(await db.exec(select(AuditLog).where(AuditLog.action == "escalation.claim")))
    assert [(c.actor_user_id, c.details["from_user_id"]) for c in claims] == [
        (desk.engineer.id, None),
        (desk.admin.id, desk.engineer.id),
    ]


async def test_only_whoever_is_on_it_may_release_it(db, desk):
    walk = await escalated(db, desk)
    await esc.claim(db, actor=desk.engineer, session_id=walk.id)
    with pytest.raises(InvalidState, match="you are not on escalation"):
        await esc.release(db, actor=desk.admin, session_id=walk.id)
    released = await esc.release(db, actor=desk.engineer, session_id=walk.id)
    assert released.claimed_by_user_id is None
    assert await actions(db, walk.id) == [
        ("escalation.claim", desk.engineer.id),
        ("escalation.release", desk.engineer.id),
    ]


async def test_two_engineers_claiming_at_once_one_wins_and_the_other_is_told(store, desk):
    _, open_db = store
    async with open_db() as first:
        walk = await escalated(first, desk)

    async def try_claim(actor):
        async with open_db() as db:
            try:
                return await esc.claim(db, actor=actor, session_id=walk.id)
            except esc.ClaimedByOther as exc:
                return exc

    results = await asyncio.gather(try_claim(desk.engineer), try_claim(desk.admin))
    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, esc.ClaimedByOther)]
    assert len(winners) == 1 and len(losers) == 1
    assert losers[0].claimed_by_user_id == winners[0].claimed_by_user_id
    async with open_db() as db:
        assert len(await actions(db, walk.id)) == 1


async def test_comments_are_kept_in_order_cleaned_and_audited(db, desk):
    walk = await escalated(db, desk)
    await esc.add_comment(db, actor=desk.engineer, session_id=walk.id, body="  Ordered a fan \x1b[31m \n")
    await esc.add_comment(db, actor=desk.admin, session_id=walk.id, body="Fan arrives Tuesday")
    detail = await esc.escalation_detail(db, actor=desk.engineer, session_id=walk.id)
    assert [(c.author_user_id, c.body) for c in detail.comments] == [
        (desk.engineer.id, "Ordered a fan"),
        (desk.admin.id, "Fan arrives Tuesday"),
    ]
    assert [a for a, _ in await actions(db, walk.id)] == ["escalation.comment", "escalation.comment"]


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        ("   ", ValidationFailed, "the comment is empty"),
        ("fan\x00", ValidationFailed, "the comment contains a NUL byte"),
        ("x" * (esc.COMMENT_CAP + 1), PayloadTooLarge, "the limit is 16,384"),
    ],
)
async def test_a_bad_comment_is_refused_saying_why_and_nothing_is_stored(db, desk, body, error, message):
    walk = await escalated(db, desk)
    with pytest.raises(error, match=message):
        await esc.add_comment(db, actor=desk.engineer, session_id=walk.id, body=body)
    assert (await esc.escalation_detail(db, actor=desk.engineer, session_id=walk.id)).comments == []
    assert await actions(db, walk.id) == []


async def test_close_with_an_outcome_resolves_the_ticket_and_reopen_escalates_it_again(db, desk):
    walk = await escalated(db, desk)
    assert await ticket_status(db, desk.tech.account_id, "T-1") == "escalated"
    closed = await esc.close(db, actor=desk.engineer, session_id=walk.id, outcome="fixed", notes="Replaced the fan")
    assert (closed.outcome, closed.outcome_notes, closed.closed_by_user_id) == (
        "fixed",
        "Replaced the fan",
        desk.engineer.id,
    )
    assert closed.claimed_by_user_id == desk.engineer.id  # nobody was on it: whoever closed it was
    assert await ticket_status(db, desk.tech.account_id, "T-1") == "resolved"
    with pytest.raises(InvalidState, match="is closed; reopen it before claiming it"):
        await esc.claim(db, actor=desk.admin, session_id=walk.id)
    with pytest.raises(InvalidState, match="closed; reopen it before closing it again"):
        await esc.close(db, actor=desk.admin, session_id=walk.id, outcome="fixed", notes="again")
    reopened = await esc.reopen(db, actor=desk.admin, session_id=walk.id)
    assert reopened.closed_at is None and reopened.outcome is None
    assert reopened.claimed_by_user_id == desk.engineer.id  # whoever was on it stays on it
    assert await ticket_status(db, desk.tech.account_id, "T-1") == "escalated"
    with pytest.raises(InvalidState, match="is open: there is nothing to reopen"):
        await esc.reopen(db, actor=desk.admin, session_id=walk.id)
    audit = list(await db.exec(select(AuditLog).where(AuditLog.action == "escalation.reopen")))
    assert audit[0].details["outcome"] == "fixed" and audit[0].details["outcome_notes"] == "Replaced the fan"
    assert [a for a, _ in await actions(db, walk.id)] == ["escalation.close", "escalation.reopen"]


async def test_closing_leaves_a_ticket_that_a_newer_walk_has_taken_over(db, desk):
    walk = await escalated(db, desk)
    from rflow_tui.services.tickets import reopen_ticket

    await reopen_ticket(db, actor=desk.tech, ticket_id="T-1")
    await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")  # a tech walks it again
    await esc.close(db, actor=desk.engineer, session_id=walk.id, outcome="duplicate", notes="see the new walk")
    assert await ticket_status(db, desk.tech.account_id, "T-1") == "in_progress"


@pytest.mark.parametrize(
    ("outcome", "notes", "message"),
    [("solved", "x", "the outcome must be fixed, "), ("fixed", "  ", "the outcome notes is empty")],
)
async def test_a_close_without_a_known_outcome_or_notes_is_refused(db, desk, outcome, notes, message):
    walk = await escalated(db, desk)
    with pytest.raises(ValidationFailed, match=message):
        await esc.close(db, actor=desk.engineer, session_id=walk.id, outcome=outcome, notes=notes)
    detail = await esc.escalation_detail(db, actor=desk.engineer, session_id=walk.id)
    assert detail.walk.closed_at is None and await actions(db, walk.id) == []


async def test_a_tech_may_not_work_escalations_and_another_desk_cannot_see_them(db, desk):
    walk = await escalated(db, desk)
    with pytest.raises(AccessDenied, match="only owners, admins and engineers may work escalations"):
        await esc.claim(db, actor=desk.tech, session_id=walk.id)
    other = await make_desk(db, name="Fabrikam", domain="fabrikam.test")
    for operation, kwargs in (
        (esc.claim, {}),
        (esc.add_comment, {"body": "peek"}),
        (esc.close, {"outcome": "fixed", "notes": "x"}),
        (esc.reopen, {}),
        (esc.escalation_detail, {}),
    ):
        with pytest.raises(NotFound, match=f"escalation {walk.id} does not exist"):
            await operation(db, actor=other.engineer, session_id=walk.id, **kwargs)
    assert await actions(db, walk.id) == []


async def test_an_engineer_deactivated_while_the_app_is_open_is_stopped_at_the_next_claim(db, desk):
    walk = await escalated(db, desk)
    await update_user(db, actor=desk.owner, email=desk.engineer.email, active=False)
    with pytest.raises(AccessDenied, match="access changed"):
        await esc.claim(db, actor=desk.engineer, session_id=walk.id)
    stored = await esc.escalation_detail(db, actor=desk.admin, session_id=walk.id)
    assert stored.walk.claimed_by_user_id is None


async def test_an_active_walk_is_not_an_escalation(db, desk):
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-2")
    with pytest.raises(InvalidState, match="is active, not escalated"):
        await esc.claim(db, actor=desk.engineer, session_id=walk.id)


async def tech_notes(db, desk) -> list[tuple[str, str]]:
    from rflow_tui.services.notifications import inbox

    await db.rollback()
    return [(note.kind, note.payload["problem_summary"]) for note in reversed(await inbox(db, actor=desk.tech))]


async def test_the_tech_hears_each_step_of_their_escalation_and_a_taken_over_engineer_hears_it_too(db, desk):
    walk = await escalated(db, desk)
    await esc.claim(db, actor=desk.engineer, session_id=walk.id)
    await esc.add_comment(db, actor=desk.engineer, session_id=walk.id, body="Fan on order.\nETA Friday")
    await esc.claim(db, actor=desk.admin, session_id=walk.id, take_over=True)
    await esc.close(db, actor=desk.admin, session_id=walk.id, outcome="fixed", notes="New fan fitted")
    await esc.reopen(db, actor=desk.admin, session_id=walk.id)
    engineer = desk.engineer.name or desk.engineer.email
    admin = desk.admin.name or desk.admin.email
    assert await tech_notes(db, desk) == [
        ("escalation.claimed", f"{engineer} is on it"),
        ("escalation.commented", f"{engineer} commented: Fan on order. ETA Friday"),
        ("escalation.claimed", f"{admin} is on it"),
        ("escalation.closed", f"{admin} closed it (Fixed): New fan fitted"),
        ("escalation.reopened", f"{admin} reopened it"),
    ]
    from rflow_tui.services.notifications import inbox

    told = [(n.kind, n.payload["problem_summary"]) for n in await inbox(db, actor=desk.engineer)]
    assert ("escalation.taken_over", f"{admin} took it over from you") in told
    assert all(n.payload["session_id"] == walk.id for n in await inbox(db, actor=desk.tech))
