"""Engineers work escalations on their screen: the ticket in view for every walk kind,
claim, comment, close, reopen, a filter, arrivals, and the notifications inbox."""

from __future__ import annotations

from sqlmodel import select

from rflow_tui.models import AuditLog, FlowProposal, Ticket
from rflow_tui.services import escalations as esc
from rflow_tui.services.library import import_flow_doc
from rflow_tui.services.walks import endings as walk_endings
from rflow_tui.services.walks import start as walk_start
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
        "flow": await walk_start.start_flow_session(db, actor=desk.tech, ticket_id="T-701", flow_id=flow.id),
        "proposal": await walk_start.start_proposal_session(
            db, actor=desk.tech, ticket_id="T-702", proposal_id=proposal.id
        ),
        "adhoc": await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-703"),
        "ai_build": await walk_start.start_ai_build_session(
            db, actor=desk.tech, ticket_id="T-704", category="network", problem_text="VPN drops hourly"
        ),
        "psa": await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="PSA-9", ticket_kind="psa"),
    }
    for walk in walks.values():
        await walk_endings.escalate(
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


async def one_escalation(db, desk, ticket_id: str = "T-1"):
    kind = "psa" if ticket_id.startswith("PSA") else "internal"
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id=ticket_id, ticket_kind=kind)
    return await walk_endings.escalate(
        db, actor=desk.tech, session_id=walk.id, reason="fan noise", reason_category="hardware"
    )


def on_it_cell(app, session_id: int) -> str:
    table = app.screen.query_one("DataTable")
    return str(table.get_row(str(session_id))[list(table.columns).index("on_it")])


async def open_dialog(pilot, app, key: str, name: str) -> None:
    await pilot.press(key)
    await wait_for(pilot, lambda: app.screen.__class__.__name__ == name)


async def test_an_engineer_claims_comments_closes_and_reopens_from_the_keys(store, db, desk):
    from textual.widgets import Select, TextArea

    walk = await one_escalation(db, desk)
    app = make_app(store, desk.engineer)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "EscalationsScreen")
        await select_walk(pilot, app, walk.id)
        screen = app.screen
        assert "Nobody is on it yet" in text_of(app, "#escalation-work")
        await pilot.press("c")
        await wait_for(pilot, lambda: on_it_cell(app, walk.id) == "eng@contoso.test")
        assert "On it: eng@contoso.test" in text_of(app, "#escalation-work")

        await open_dialog(pilot, app, "m", "CommentDialog")
        app.screen.query_one(TextArea).text = "Ordered a new fan"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "Ordered a new fan" in text_of(app, "#escalation-comments"))

        await open_dialog(pilot, app, "d", "CloseDialog")
        await pilot.press("ctrl+s")  # no outcome yet: said, not submitted
        assert "Choose an outcome" in str(app.screen.query_one(".error").render())
        app.screen.query_one(Select).value = "fixed"
        app.screen.query_one(TextArea).text = "Replaced the fan"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is screen and on_it_cell(app, walk.id) == "✓ closed")
        assert "Fixed" in text_of(app, "#escalation-work") and "Replaced the fan" in text_of(app, "#escalation-work")

        await pilot.press("o")
        await wait_for(pilot, lambda: on_it_cell(app, walk.id) == "eng@contoso.test")
    ticket = (await db.exec(select(Ticket).where(Ticket.ticket_id == "T-1"))).one()
    await db.refresh(ticket)
    assert ticket.status == "escalated"  # closed (resolved), then reopened (escalated again)
    actions = [a.action for a in await db.exec(select(AuditLog).order_by(AuditLog.seq))]
    assert actions[-4:] == ["escalation.claim", "escalation.comment", "escalation.close", "escalation.reopen"]


async def test_claiming_someone_elses_escalation_asks_first(store, db, desk):
    walk = await one_escalation(db, desk)
    await esc.claim(db, actor=desk.admin, session_id=walk.id)
    app = make_app(store, desk.engineer)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "EscalationsScreen")
        await select_walk(pilot, app, walk.id)
        assert on_it_cell(app, walk.id) == "admin@contoso.test"
        await open_dialog(pilot, app, "c", "TakeOverDialog")
        await pilot.press("escape")  # a stray c takes nothing
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "EscalationsScreen")
        assert on_it_cell(app, walk.id) == "admin@contoso.test"
        await open_dialog(pilot, app, "c", "TakeOverDialog")
        await pilot.press("enter")
        await wait_for(pilot, lambda: on_it_cell(app, walk.id) == "eng@contoso.test")
    detail = await esc.escalation_detail(db, actor=desk.admin, session_id=walk.id)
    assert detail.walk.claimed_by_user_id == desk.engineer.id


async def test_the_filter_shows_all_then_unclaimed_then_mine(store, db, desk):
    mine, others, nobodys, closed = [await one_escalation(db, desk, t) for t in ("T-1", "T-2", "T-3", "PSA-4")]
    await esc.claim(db, actor=desk.engineer, session_id=mine.id)
    await esc.claim(db, actor=desk.admin, session_id=others.id)
    await esc.close(db, actor=desk.admin, session_id=closed.id, outcome="no_fault", notes="works for me")
    app = make_app(store, desk.engineer)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "EscalationsScreen")
        table = app.screen.query_one("DataTable")
        await wait_for(pilot, lambda: table.row_count == 4)
        shown = []
        for _ in range(3):
            await pilot.press("f")
            await pilot.pause(0.05)
            shown.append(({row.value for row in table.rows}, text_of(app, "#escalation-status")))
        assert shown[0][0] == {str(nobodys.id)} and "Unclaimed only ·" in shown[0][1]
        assert shown[1][0] == {str(mine.id)} and "Mine only ·" in shown[1][1]
        assert len(shown[2][0]) == 4 and shown[2][1].endswith("All · 3 open, 1 unclaimed, 1 yours")


async def test_a_refused_comment_is_said_and_what_was_typed_is_kept(store, db, desk):
    from textual.widgets import TextArea

    walk = await one_escalation(db, desk)
    app = make_app(store, desk.engineer)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "EscalationsScreen")
        await select_walk(pilot, app, walk.id)
        await open_dialog(pilot, app, "m", "CommentDialog")
        app.screen.query_one(TextArea).text = "fan \x00 clicking"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: any("NUL byte" in n.message for n in app._notifications))
        await open_dialog(pilot, app, "m", "CommentDialog")
        assert app.screen.query_one(TextArea).text == "fan \x00 clicking"
    assert (await esc.escalation_detail(db, actor=desk.engineer, session_id=walk.id)).comments == []


async def test_the_palette_claims_the_selected_escalation(store, db, desk):
    from tests.test_tui_keys import palette_search

    walk = await one_escalation(db, desk)
    app = make_app(store, desk.engineer)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "EscalationsScreen")
        await select_walk(pilot, app, walk.id)
        prompts = await palette_search(pilot, app, "claim", "Claim escalation")
        assert prompts[0] == "Claim escalation"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "EscalationsScreen")
        await wait_for(pilot, lambda: on_it_cell(app, walk.id) == "eng@contoso.test")
        await palette_search(pilot, app, "inbox", "Open inbox")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "InboxScreen")


# --- arrivals: highlighted, a bell, ages that tick ------------------------------------------


def ticket_cell(app, session_id: int):
    return app.screen.query_one("DataTable").get_row(str(session_id))[0]


async def test_a_new_escalation_is_highlighted_and_rings_the_bell_once_per_gap(store, db, desk):
    from dataclasses import replace

    first = await one_escalation(db, desk, "T-1")
    app = make_app(store, desk.engineer)
    ui = app.ctx.settings.ui
    app.ctx.settings = replace(app.ctx.settings, ui=replace(ui, escalation_bell=True, escalation_bell_gap_seconds=600))
    bells = []
    async with app.run_test(size=SIZE) as pilot:
        app.bell = lambda: bells.append(1)
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "EscalationsScreen")
        await select_walk(pilot, app, first.id)
        assert not str(ticket_cell(app, first.id)).startswith("●")  # there when the screen opened: not new
        assert bells == []
        second = await one_escalation(db, desk, "T-2")
        await wait_for(pilot, lambda: str(second.id) in {r.value for r in app.screen.query_one("DataTable").rows})
        assert str(ticket_cell(app, second.id)) == "● T-2"
        assert app.screen._current().id == first.id  # the selection stays where the engineer was
        assert bells == [1]
        third = await one_escalation(db, desk, "T-3")
        await wait_for(pilot, lambda: str(third.id) in {r.value for r in app.screen.query_one("DataTable").rows})
        assert str(ticket_cell(app, third.id)) == "● T-3"
        assert bells == [1]  # within the gap: no second bell
        await select_walk(pilot, app, second.id)  # looked at: no longer marked
        assert str(ticket_cell(app, second.id)) == "T-2" and str(ticket_cell(app, third.id)) == "● T-3"


async def test_no_bell_unless_the_desk_asks_for_one(store, db, desk):
    await one_escalation(db, desk, "T-1")
    app = make_app(store, desk.engineer)
    bells = []
    async with app.run_test(size=SIZE) as pilot:
        app.bell = lambda: bells.append(1)
        await wait_for(pilot, lambda: app.screen.query("DataTable") and app.screen.query_one("DataTable").row_count)
        second = await one_escalation(db, desk, "T-2")
        await wait_for(pilot, lambda: str(second.id) in {r.value for r in app.screen.query_one("DataTable").rows})
    assert bells == []


async def test_ages_tick_while_the_screen_is_open(store, db, desk, monkeypatch):
    from datetime import timedelta

    from rflow_tui.tui import format as tui_format

    walk = await one_escalation(db, desk)
    clock = [walk.resolved_at + timedelta(seconds=30)]
    monkeypatch.setattr(tui_format, "now", lambda: clock[0])
    app = make_app(store, desk.engineer)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "EscalationsScreen")
        await select_walk(pilot, app, walk.id)
        table = app.screen.query_one("DataTable")
        age_column = list(table.columns).index("age")
        assert str(table.get_row(str(walk.id))[age_column]) == "30s"
        clock[0] += timedelta(minutes=5)
        await wait_for(pilot, lambda: str(table.get_row(str(walk.id))[age_column]) == "5m")


# --- the inbox ----------------------------------------------------------------------------


async def test_the_inbox_counts_unread_opens_an_escalation_and_marks_it_read(store, db, desk):
    first = await one_escalation(db, desk, "T-1")
    second = await one_escalation(db, desk, "T-2")
    app = make_app(store, desk.engineer)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "EscalationsScreen")
        await wait_for(pilot, lambda: text_of(app, "#escalation-status").startswith("✉ 2 ·"))
        await select_walk(pilot, app, second.id)
        await open_dialog(pilot, app, "n", "InboxScreen")
        inbox = app.screen.query_one("#inbox-list")
        await wait_for(pilot, lambda: inbox.row_count == 2)
        assert "2 unread of 2" in text_of(app, "#inbox-title")
        inbox.move_cursor(row=1)  # oldest last: the first escalation
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "EscalationsScreen")
        await wait_for(pilot, lambda: app.screen._current().id == first.id)
        await wait_for(pilot, lambda: text_of(app, "#escalation-status").startswith("✉ 1 ·"))
        await open_dialog(pilot, app, "n", "InboxScreen")
        await wait_for(pilot, lambda: "1 unread of 2" in text_of(app, "#inbox-title"))
        await pilot.press("a")
        await wait_for(pilot, lambda: "0 unread of 2" in text_of(app, "#inbox-title"))
        await pilot.press("escape")
        await wait_for(pilot, lambda: text_of(app, "#escalation-status").startswith("All ·"))
    reads = list(await db.exec(select(AuditLog).where(AuditLog.action == "notification.read")))
    assert [r.actor_user_id for r in reads] == [desk.engineer.id, desk.engineer.id]


async def test_another_engineers_claim_and_comment_show_live(store, db, desk):
    """Everyone sees, live, who is on it: another engineer's claim and comment reach this
    screen through the feed, without F5."""
    walk = await one_escalation(db, desk)
    app = make_app(store, desk.engineer)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "EscalationsScreen")
        await select_walk(pilot, app, walk.id)
        await esc.claim(db, actor=desk.admin, session_id=walk.id)
        await wait_for(pilot, lambda: on_it_cell(app, walk.id) == "admin@contoso.test")
        await wait_for(pilot, lambda: "On it: admin@contoso.test" in text_of(app, "#escalation-work"))
        await esc.add_comment(db, actor=desk.admin, session_id=walk.id, body="On my way to the 3rd floor")
        await wait_for(pilot, lambda: "On my way to the 3rd floor" in text_of(app, "#escalation-comments"))
        await esc.close(db, actor=desk.admin, session_id=walk.id, outcome="fixed", notes="New fan")
        await wait_for(pilot, lambda: on_it_cell(app, walk.id) == "✓ closed")


async def test_the_pane_says_whether_each_escalations_alert_went_out(store, db, desk):
    from rflow_tui.config import AlertSettings
    from rflow_tui.services import alert_outbox
    from tests.fake_alerts import FakeWebhook, Plan

    hook = FakeWebhook()
    try:
        alerts = AlertSettings(urls=(hook.url(),), timeout_seconds=1.0)
        sent, refused, queued = [await one_escalation(db, desk, ticket_id) for ticket_id in ("T-1", "T-2", "T-3")]
        hook.plan(Plan(status=200), Plan(status=403))
        for walk in (sent, refused):
            item_id = (await esc.escalation_detail(db, actor=desk.engineer, session_id=walk.id)).alert.id
            await db.rollback()
            await alert_outbox.deliver_one(db, actor=desk.engineer, alerts=alerts, item_id=item_id)
        app = make_app(store, desk.engineer, alerts=alerts)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.screen.__class__.__name__ == "EscalationsScreen")
            for walk, words in (
                (sent, "✉ Alert sent to 1 destination"),
                (refused, "✗ Alert failed: json: Failed to send JSON POST notification: error=403"),
                (queued, "… Alert queued: rflow alerts push sends it"),
            ):
                await select_walk(pilot, app, walk.id)
                await wait_for(pilot, lambda words=words: text_of(app, "#escalation-alert").startswith(words))
        quiet = make_app(store, desk.engineer)  # no [alerts] here: an alert never tried is not worth a line
        async with quiet.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: quiet.screen.__class__.__name__ == "EscalationsScreen")
            await select_walk(pilot, quiet, queued.id)
            await wait_for(pilot, lambda: "T-3" in text_of(quiet, "#ticket-subject"))
            await pilot.pause()
            assert not quiet.screen.query_one("#escalation-alert").display
            await select_walk(pilot, quiet, sent.id)
            await wait_for(pilot, lambda: text_of(quiet, "#escalation-alert").startswith("✉ Alert sent"))
    finally:
        hook.close()
