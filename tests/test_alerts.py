"""Escalation alerts, exactly once per destination: an escalation queues its alert in the same
transaction, and ``alert_outbox`` delivers it through apprise to a loopback webhook (and a
loopback SMTP server), once, whatever the receiver does in between."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlmodel import select

from rflow_tui.config import AlertSettings
from rflow_tui.models import AlertOutboxItem, Ticket, utcnow
from rflow_tui.services import alert_outbox
from rflow_tui.services.errors import InvalidState, ValidationFailed
from rflow_tui.services.walks import endings as walk_endings
from rflow_tui.services.walks import start as walk_start
from rflow_tui.services.walks import steps as walk_steps
from tests.fake_alerts import FakeSmtp, FakeWebhook, Plan

SECRET_NOTE = "called Bob; his password is Hunter2! and he is at bob.baker@contoso.test"


@pytest.fixture
def hook():
    receiver = FakeWebhook()
    yield receiver
    receiver.close()


@pytest.fixture
def second_hook():
    receiver = FakeWebhook()
    yield receiver
    receiver.close()


def alerts_to(*urls: str, **settings) -> AlertSettings:
    return AlertSettings(urls=urls, timeout_seconds=1.0, **settings)


async def escalate(db, desk, *, ticket_id="T-1", category="hardware", reason="disk clicking", notes=()) -> int:
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id=ticket_id)
    if notes:
        await walk_steps.update_notes(db, actor=desk.tech, session_id=walk.id, notes=list(notes))
    await walk_endings.escalate(db, actor=desk.tech, session_id=walk.id, reason=reason, reason_category=category)
    return walk.id


async def the_alert(db, session_id: int) -> AlertOutboxItem:
    rows = await db.exec(
        select(AlertOutboxItem)
        .where(AlertOutboxItem.session_id == session_id)
        .execution_options(populate_existing=True)
    )
    return rows.one()


async def deliver(db, desk, alerts: AlertSettings, session_id: int, *, at=None) -> str:
    item_id = (await the_alert(db, session_id)).id
    await db.rollback()  # as a drain's own session: nothing of the test's reads held open
    return await alert_outbox.deliver_one(db, actor=desk.engineer, alerts=alerts, item_id=item_id, now=at)


# --- queued with the escalation -------------------------------------------------------


async def test_an_escalation_queues_one_alert_in_its_own_transaction_and_an_ending_that_fails_queues_none(db, desk):
    session_id = await escalate(db, desk, reason="disk clicking; replace it")
    item = await the_alert(db, session_id)
    assert (item.state, item.attempts, item.ticket_id, item.reason_category) == ("pending", 0, "T-1", "hardware")
    assert item.facts["subject"] == "Outlook will not open" and item.facts["escalated_by"] == "Tina Tech"
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-2")
    with pytest.raises(ValidationFailed):
        await walk_endings.escalate(db, actor=desk.tech, session_id=walk.id, reason="  ", reason_category="hardware")
    await walk_endings.resolve(db, actor=desk.tech, session_id=walk.id, helpful=True, resolution_notes="fixed")
    rows = list(await db.exec(select(AlertOutboxItem)))
    assert [row.session_id for row in rows] == [session_id]  # a resolve, and a refused escalation, owe no alert


async def test_an_escalation_without_a_walk_alerts_too(db, desk, hook):
    walk = await walk_endings.escalate_without_walk(
        db, actor=desk.tech, ticket_id="T-3", reason="VPN concentrator down", reason_category="network"
    )
    assert await deliver(db, desk, alerts_to(hook.url()), walk.id or 0) == "delivered"
    assert "VPN concentrator down" in hook.accepted[0].message


# --- delivered once, whatever the receiver does ------------------------------------------


async def test_a_500_is_retried_after_its_backoff_and_the_alert_arrives_once(db, desk, hook):
    alerts = alerts_to(hook.url())
    session_id = await escalate(db, desk)
    hook.plan(Plan(status=500))
    now = utcnow()
    assert await deliver(db, desk, alerts, session_id, at=now) == "pending"
    item = await the_alert(db, session_id)
    assert "500" in item.last_error and item.next_attempt_at >= now + timedelta(seconds=30)
    assert await deliver(db, desk, alerts, session_id, at=now + timedelta(seconds=5)) == "pending"  # not due: not sent
    assert len(hook.received) == 1
    assert await deliver(db, desk, alerts, session_id, at=now + timedelta(seconds=31)) == "delivered"
    assert await deliver(db, desk, alerts, session_id, at=now + timedelta(hours=2)) == "delivered"
    assert [r.answered for r in hook.received] == [500, 200] and len(hook.accepted) == 1
    assert hook.received[0].key == hook.received[1].key  # one key for every try of one alert to one place
    item = await the_alert(db, session_id)
    assert (item.state, item.attempts, item.last_error) == ("delivered", 2, None)


async def test_a_429_waits_the_rate_limit_wait_since_apprise_does_not_pass_on_retry_after(db, desk, hook):
    alerts = alerts_to(hook.url())
    session_id = await escalate(db, desk)
    hook.plan(Plan(status=429, headers={"Retry-After": "90"}))
    now = utcnow()
    assert await deliver(db, desk, alerts, session_id, at=now) == "pending"
    item = await the_alert(db, session_id)
    assert "429" in item.last_error
    assert item.next_attempt_at >= now + alert_outbox.RATE_LIMIT_WAIT  # longer than a 5xx's 30 s
    assert await deliver(db, desk, alerts, session_id, at=now + timedelta(seconds=45)) == "pending"
    assert len(hook.received) == 1
    assert await deliver(db, desk, alerts, session_id, at=now + timedelta(seconds=61)) == "delivered"
    assert len(hook.accepted) == 1


async def test_no_answer_after_the_receiver_took_it_is_not_sent_again_until_someone_asks(db, desk, hook):
    alerts = alerts_to(hook.url())
    session_id = await escalate(db, desk)
    hook.plan(Plan(delay=2.5))  # it reads the alert, then answers after apprise stopped waiting
    now = utcnow()
    assert await deliver(db, desk, alerts, session_id, at=now) == "failed"
    item = await the_alert(db, session_id)
    assert "may have arrived" in item.last_error
    assert [sent["state"] for sent in item.sent_to.values()] == ["unconfirmed"]
    assert alert_outbox.status_line(item)[0] == "failed"
    assert await deliver(db, desk, alerts, session_id, at=now + timedelta(hours=2)) == "failed"
    assert len(hook.received) == 1  # no second copy unasked
    with pytest.raises(Exception, match="owners, admins and engineers"):
        await alert_outbox.retry(db, actor=desk.tech, item_id=item.id)
    await alert_outbox.retry(db, actor=desk.engineer, item_id=item.id)
    assert await deliver(db, desk, alerts, session_id) == "delivered"
    assert len(hook.received) == 2 and hook.received[0].key == hook.received[1].key  # a keeping receiver drops it
    with pytest.raises(InvalidState, match="not failed"):
        await alert_outbox.retry(db, actor=desk.engineer, item_id=item.id)


async def test_two_destinations_each_get_it_once_when_one_of_them_fails_first(db, desk, hook, second_hook):
    alerts = alerts_to(hook.url(), second_hook.url("teams"))
    session_id = await escalate(db, desk)
    second_hook.plan(Plan(status=503))
    now = utcnow()
    assert await deliver(db, desk, alerts, session_id, at=now) == "pending"
    assert await deliver(db, desk, alerts, session_id, at=now + timedelta(minutes=1)) == "delivered"
    assert (len(hook.received), len(second_hook.received), len(second_hook.accepted)) == (1, 2, 1)
    assert hook.received[0].key != second_hook.received[0].key  # a key per escalation and destination
    assert alert_outbox.status_line(await the_alert(db, session_id)) == ("sent", "Alert sent to 2 destinations")


async def test_a_url_that_refuses_for_good_fails_the_alert_with_the_reason(db, desk, hook):
    session_id = await escalate(db, desk)
    hook.plan(Plan(status=403))
    assert await deliver(db, desk, alerts_to(hook.url()), session_id) == "failed"
    state, line = alert_outbox.status_line(await the_alert(db, session_id))
    assert state == "failed" and "403" in line


async def test_a_drain_sends_every_due_alert_once_with_several_in_flight(store, db, desk, hook):
    _, open_db = store
    for ticket in ("T-1", "T-2", "T-3"):
        await escalate(db, desk, ticket_id=ticket)
    hook.plan(Plan(status=500))
    first = await alert_outbox.drain(open_db, actor=desk.engineer, alerts=alerts_to(hook.url()), concurrency=3)
    assert (first.delivered, first.waiting) == (2, 1)
    again = await alert_outbox.drain(open_db, actor=desk.engineer, alerts=alerts_to(hook.url()))
    assert (again.delivered, again.waiting) == (0, 0)  # the one that failed is not due yet
    later = utcnow() + timedelta(minutes=1)
    last = await alert_outbox.drain(open_db, actor=desk.engineer, alerts=alerts_to(hook.url()), now=later)
    assert last.delivered == 1
    assert sorted(r.message.split(":")[0] for r in hook.accepted) == ["Ticket T-1", "Ticket T-2", "Ticket T-3"]


# --- what goes, and what it says ---------------------------------------------------------


async def test_the_category_filter_keeps_an_alert_from_going_out(db, desk, hook):
    alerts = alerts_to(hook.url(), categories=("security", "network"))
    hardware = await escalate(db, desk, category="hardware")
    security = await escalate(db, desk, ticket_id="T-2", category="security", reason="phishing link clicked")
    assert await deliver(db, desk, alerts, hardware) == "skipped"
    assert await deliver(db, desk, alerts, security) == "delivered"
    assert [r.message.splitlines()[0] for r in hook.received] == ["Ticket T-2: Printer offline on 3rd floor"]
    state, line = alert_outbox.status_line(await the_alert(db, hardware))
    assert state == "skipped" and "hardware" in line


async def test_the_priority_filter_matches_the_psa_priority_and_leaves_tickets_without_one_out(db, desk, hook):
    ticket = (await db.exec(select(Ticket).where(Ticket.ticket_id == "T-2"))).one()
    ticket.priority = "Priority 1 - Critical"
    db.add(ticket)
    await db.commit()
    alerts = alerts_to(hook.url(), priorities=("priority 1 - critical",))
    critical = await escalate(db, desk, ticket_id="T-2")
    plain = await escalate(db, desk, ticket_id="T-1")
    assert await deliver(db, desk, alerts, critical) == "delivered"
    assert await deliver(db, desk, alerts, plain) == "skipped"
    assert "Priority: Priority 1 - Critical" in hook.accepted[0].message


async def test_the_message_has_the_ticket_reason_who_and_link_in_plain_text_with_secrets_withheld(db, desk, hook):
    ticket = (await db.exec(select(Ticket).where(Ticket.ticket_id == "T-1"))).one()
    ticket.psa_url = "https://na.myconnectwise.test/ticket?id=101"
    db.add(ticket)
    await db.commit()
    session_id = await escalate(
        db, desk, reason="profile corrupt <!channel> <b>x</b>\x1b[31m; password is Hunter2!", notes=[SECRET_NOTE]
    )
    assert await deliver(db, desk, alerts_to(hook.url()), session_id) == "delivered"
    body = hook.accepted[0].body
    message = body["message"]
    assert body["title"] == "Escalated: T-1 Outlook will not open"
    assert "Ticket T-1: Outlook will not open" in message
    assert "Reason: Hardware fault or replacement" in message
    assert "Why: profile corrupt <!channel> <b>x</b>; password is [password-1]" in message  # text, not markup
    assert "\x1b" not in message and "Hunter2" not in message
    assert "Escalated by: Tina Tech" in message
    assert "Link: https://na.myconnectwise.test/ticket?id=101" in message
    assert "Notes:" not in message and "Bob" not in message  # the tech's notes stay in rflow by default


async def test_notes_go_only_when_configured_and_then_redacted(db, desk, hook):
    alerts = alerts_to(hook.url(), include_notes=True, ticket_link="https://desk.test/t/{ticket_id}")
    session_id = await escalate(db, desk, notes=[SECRET_NOTE])
    assert await deliver(db, desk, alerts, session_id) == "delivered"
    message = hook.accepted[0].message
    assert "Notes:\n- called Bob; his password is [password-1] and he is at [email-1]" in message
    assert "Hunter2" not in message and "bob.baker@" not in message
    assert "Link: https://desk.test/t/T-1" in message


async def test_an_alert_by_email_reaches_the_smtp_server_as_plain_text(db, desk):
    smtp = FakeSmtp()
    try:
        session_id = await escalate(db, desk, reason="fan noise <b>loud</b>")
        assert await deliver(db, desk, alerts_to(smtp.url()), session_id) == "delivered"
        for _ in range(50):
            if smtp.messages:
                break
            await asyncio.sleep(0.02)
        [mail] = smtp.messages
        assert mail["Subject"] == "Escalated: T-1 Outlook will not open" and mail["To"] == "oncall@desk.test"
        assert "Why: fan noise <b>loud</b>" in mail.get_body(("plain",)).get_content()
    finally:
        smtp.close()


async def test_an_alert_waits_when_no_urls_are_configured_and_the_screen_line_says_it_is_queued(db, desk):
    session_id = await escalate(db, desk)
    item = await the_alert(db, session_id)
    with pytest.raises(InvalidState, match="no \\[alerts\\] urls"):
        await alert_outbox.deliver_one(db, actor=desk.engineer, alerts=AlertSettings(), item_id=item.id)
    assert alert_outbox.status_line(await the_alert(db, session_id)) == (
        "pending",
        "Alert queued: this app sends it within 30 s",
    )


async def test_an_unconfirmed_send_keeps_the_alert_failed_though_the_other_url_gets_it(db, desk, hook, second_hook):
    alerts = alerts_to(hook.url(), second_hook.url("second"))
    session_id = await escalate(db, desk)
    hook.plan(Plan(delay=2.5))
    second_hook.plan(Plan(status=502))
    now = utcnow()
    assert await deliver(db, desk, alerts, session_id, at=now) == "pending"  # the 502 may pass
    assert await deliver(db, desk, alerts, session_id, at=now + timedelta(minutes=1)) == "failed"
    assert (len(hook.received), len(second_hook.accepted)) == (1, 1)
    state, line = alert_outbox.status_line(await the_alert(db, session_id))
    assert state == "failed" and "may have arrived" in line
