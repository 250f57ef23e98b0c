"""Engineers work escalations on their screen: the ticket in view for every walk kind,
claim, comment, close, reopen, a filter, arrivals, and the notifications inbox."""

from __future__ import annotations

from rflow_tui.models import FlowProposal, Ticket
from rflow_tui.services import sessions as svc
from rflow_tui.services.flows import import_flow_doc
from tests.tui_support import SMALL_FLOW, make_app, wait_for

SIZE = (130, 40)


async def escalate_every_kind(db, desk) -> dict[str, int]:
    """One escalation of each walk kind, each on its own ticket (the PSA one not held by the desk)."""
    account = desk.tech.account_id
    for ticket_id, subject, requester, body in (
        ("T-701", "Outlook will not open", "Bob Baker", "Since the Monday update"),
        ("T-702", "Teams camera is black", "Ann Archer", "Only in meetings"),
        ("T-703", "Printer offline", "Carol Chen", "3rd floor, by the kitchen"),
        ("T-704", "VPN drops every hour", "Dan Dale", "Home office, fibre"),
    ):
        db.add(Ticket(account_id=account, ticket_id=ticket_id, subject=subject, requester=requester, body=body))
    db.add(FlowProposal(account_id=account, title="Camera", proposed_flow_data={"tree_structure": {}}))
    await db.commit()
    flow = await import_flow_doc(db, actor=desk.owner, doc=SMALL_FLOW, source="test")
    proposal = (await db.exec(FlowProposal.__table__.select())).first()
    walks = {
        "flow": await svc.start_flow_session(db, actor=desk.tech, ticket_id="T-701", flow_id=flow.id),
        "proposal": await svc.start_proposal_session(db, actor=desk.tech, ticket_id="T-702", proposal_id=proposal.id),
        "adhoc": await svc.start_adhoc_session(db, actor=desk.tech, ticket_id="T-703"),
        "ai_build": await svc.start_ai_build_session(
            db, actor=desk.tech, ticket_id="T-704", category="network", problem_text="VPN drops hourly"
        ),
        "psa": await svc.start_adhoc_session(db, actor=desk.tech, ticket_id="PSA-9", ticket_kind="psa"),
    }
    for walk in walks.values():
        await svc.escalate(
            db, actor=desk.tech, session_id=walk.id, reason="needs a look", reason_category="user_unavailable"
        )
    return {kind: walk.id for kind, walk in walks.items()}


def text_of(app, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


async def select_walk(pilot, app, session_id: int) -> None:
    table = app.screen.query_one("DataTable")
    await wait_for(pilot, lambda: table.row_count and str(session_id) in {r.value for r in table.rows})
    table.move_cursor(row=table.get_row_index(str(session_id)))
    await wait_for(pilot, lambda: str(app.screen._current().id) == str(session_id))


async def test_the_detail_pane_shows_the_ticket_for_every_walk_kind(store, db, desk):
    ids = await escalate_every_kind(db, desk)
    expected = {
        "flow": ("T-701 · Outlook will not open", "Bob Baker", "Since the Monday update", "Flow walk"),
        "proposal": ("T-702 · Teams camera is black", "Ann Archer", "Only in meetings", "Proposal walk"),
        "adhoc": ("T-703 · Printer offline", "Carol Chen", "3rd floor, by the kitchen", "Ad-hoc walk"),
        "ai_build": ("T-704 · VPN drops every hour", "Dan Dale", "Home office, fibre", "AI build walk"),
    }
    app = make_app(store, desk.engineer)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "EscalationsScreen")
        for kind, (subject, requester, description, context) in expected.items():
            await select_walk(pilot, app, ids[kind])
            await wait_for(pilot, lambda subject=subject: subject in text_of(app, "#ticket-subject"))
            meta = text_of(app, "#ticket-meta")
            assert requester in meta and f"{context} · session {ids[kind]}" in meta
            assert text_of(app, "#ticket-description") == description
        await select_walk(pilot, app, ids["psa"])
        await wait_for(pilot, lambda: "details are in the PSA" in text_of(app, "#ticket-meta"))
        assert "PSA-9" in text_of(app, "#ticket-subject")
        assert not app.screen.query_one("#ticket-description").display  # nothing of the last ticket stays
        await select_walk(pilot, app, ids["ai_build"])
        await wait_for(pilot, lambda: "VPN drops hourly" in text_of(app, "#escalation-body"))  # the AI walk's problem


async def test_categories_read_as_words_not_codes(store, db, desk):
    ids = await escalate_every_kind(db, desk)
    app = make_app(store, desk.engineer)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "EscalationsScreen")
        await select_walk(pilot, app, ids["flow"])
        table = app.screen.query_one("DataTable")
        row = table.get_row(str(ids["flow"]))
        category = row[list(table.columns).index("category")]
        assert str(category) == "User away"
        assert "User unavailable to continue" in text_of(app, "#escalation-body")
        assert "user_unavailable" not in text_of(app, "#escalation-body")
