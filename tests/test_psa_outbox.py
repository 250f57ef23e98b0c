"""Out to the PSA, exactly once: a walk's end on a PSA ticket queues its note and status in
the same transaction, and `rflow psa push` (``deliver_due``) delivers them against the
loopback ConnectWise: once, whatever the PSA does in between."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from rflow_tui.models import PsaOutboxItem, utcnow
from rflow_tui.psa.base import marker
from rflow_tui.services import psa_outbox
from rflow_tui.services.errors import InvalidState
from rflow_tui.services.tickets import add_ticket
from rflow_tui.services.walks import endings as walk_endings
from rflow_tui.services.walks import start as walk_start
from tests.fake_psa import CW_ENV, FakeConnectWise, connectwise_adapter

STATUSES = {"resolved": "Completed", "escalated": "Escalated to L2"}
NOTES = r"/service/tickets/101/notes"


@pytest.fixture
def cw_api():
    api = FakeConnectWise()
    api.add_ticket(101, "Outlook will not open", description="since the update")
    yield api
    api.close()


@pytest.fixture
async def cw(cw_api):
    adapter = connectwise_adapter(cw_api, timeout_seconds=0.5)
    yield adapter
    await adapter.aclose()


async def escalated_psa_walk(db, desk) -> int:
    await add_ticket(
        db,
        actor=desk.tech,
        ticket_id="101",
        subject="Outlook will not open",
        ticket_kind="psa",
        psa_system="connectwise",
    )
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="101", ticket_kind="psa")
    await walk_endings.escalate(
        db,
        actor=desk.tech,
        session_id=walk.id,
        reason="profile corrupt <b>x</b>; her password is Hunter2!",
        reason_category="other",
    )
    return walk.id


async def items(db) -> list[PsaOutboxItem]:
    await db.rollback()
    return list(await db.exec(select(PsaOutboxItem)))


async def test_escalating_queues_the_note_and_status_in_the_same_transaction_without_calling_the_psa(db, desk, cw_api):
    walk_id = await escalated_psa_walk(db, desk)
    [item] = await items(db)
    assert (item.session_id, item.ticket_id, item.outcome, item.state) == (walk_id, "101", "escalated", "pending")
    # the tech's words as plain text, as typed: no markup to read them as, no escapes to clutter them
    assert "Reason: profile corrupt <b>x</b>" in item.note and "Subject: Outlook will not open" in item.note
    assert "**" not in item.note and "\\" not in item.note
    assert cw_api.requests == []  # a PSA that is down cannot hold up the escalation


async def test_push_posts_one_note_with_its_marker_and_sets_the_status_and_a_second_push_posts_nothing(
    db, desk, cw, cw_api
):
    await escalated_psa_walk(db, desk)
    drained = await psa_outbox.deliver_due(db, actor=desk.tech, adapter=cw, statuses=STATUSES)
    assert (drained.delivered, drained.failed, drained.waiting) == (1, 0, 0)
    [note] = cw_api.notes[101]
    [item] = await items(db)
    assert note["text"].endswith(marker(item.idempotency_key)) and item.psa_note_id == str(note["id"])
    assert "Hunter2!" in item.note and "Hunter2!" not in note["text"]  # kept on the desk, withheld from the PSA
    assert cw_api.tickets[101]["status"]["name"] == "Escalated to L2"
    again = await psa_outbox.deliver_due(db, actor=desk.tech, adapter=cw, statuses=STATUSES)
    assert again.delivered == 0 and len(cw_api.notes[101]) == 1


async def test_a_timeout_after_the_server_committed_the_note_leaves_exactly_one_note(db, desk, cw, cw_api):
    await escalated_psa_walk(db, desk)
    cw_api.fail("POST", NOTES, 200, hang=1.5)  # the note is stored, the answer comes too late
    first = await psa_outbox.deliver_due(db, actor=desk.tech, adapter=cw, statuses=STATUSES)
    assert first.waiting == 1 and len(cw_api.notes[101]) == 1
    later = utcnow() + timedelta(hours=2)
    second = await psa_outbox.deliver_due(db, actor=desk.tech, adapter=cw, statuses=STATUSES, now=later)
    assert second.delivered == 1
    assert len(cw_api.notes[101]) == 1 and cw_api.count("POST", NOTES) == 1  # found by its marker, not posted again


async def test_a_429_waits_what_its_retry_after_says_before_the_next_try(db, desk, cw, cw_api):
    await escalated_psa_walk(db, desk)
    cw_api.fail("POST", NOTES, 429, headers={"Retry-After": "120"})
    before = utcnow()
    drained = await psa_outbox.deliver_due(db, actor=desk.tech, adapter=cw, statuses=STATUSES)
    [item] = await items(db)
    assert drained.waiting == 1 and item.state == "pending" and "rate limited" in (item.last_error or "")
    assert timedelta(seconds=115) < item.next_attempt_at - before < timedelta(seconds=130)
    soon = await psa_outbox.deliver_due(
        db, actor=desk.tech, adapter=cw, statuses=STATUSES, now=before + timedelta(seconds=60)
    )
    assert soon.delivered == 0 and cw_api.count("POST", NOTES) == 1  # not called again inside the wait


async def test_bad_keys_fail_the_item_until_it_is_retried_then_it_is_delivered_once(db, desk, cw, cw_api):
    await escalated_psa_walk(db, desk)
    cw_api.fail("POST", NOTES, 401)
    drained = await psa_outbox.deliver_due(db, actor=desk.tech, adapter=cw, statuses=STATUSES)
    [item] = await items(db)
    assert drained.failed == 1 and item.state == "failed" and "check the keys" in (item.last_error or "")
    assert (await psa_outbox.deliver_due(db, actor=desk.tech, adapter=cw, statuses=STATUSES)).delivered == 0
    await psa_outbox.retry(db, actor=desk.engineer, item_id=item.id)
    assert (await psa_outbox.deliver_due(db, actor=desk.tech, adapter=cw, statuses=STATUSES)).delivered == 1
    assert len(cw_api.notes[101]) == 1
    with pytest.raises(InvalidState, match="is delivered, not failed"):
        await psa_outbox.retry(db, actor=desk.engineer, item_id=item.id)


async def test_an_internal_ticket_owes_no_psa_anything(db, desk):
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")
    await walk_endings.resolve(db, actor=desk.tech, session_id=walk.id, helpful=True, resolution_notes="rebooted")
    assert await items(db) == []


def test_the_cli_pushes_then_shows_the_outbox(db_url, desk, cw_api, tmp_path, monkeypatch, capsys):
    import asyncio

    from rflow_tui.cli import main
    from rflow_tui.db import open_store

    async def seed() -> None:
        engine, open_db = await open_store(db_url)
        async with open_db() as other:
            await escalated_psa_walk(other, desk)
        await engine.dispose()

    asyncio.run(seed())
    config = tmp_path / "config.toml"
    config.write_text(
        f'[psa]\nkind = "connectwise"\napi_url = "{cw_api.url}"\ncompany = "contoso"\nboard = "Help Desk"\n'
        'escalated_status = "Escalated to L2"\n'
    )
    for name, value in {**CW_ENV, "RFLOW_CONFIG": str(config), "RFLOW_DATABASE_URL": db_url}.items():
        monkeypatch.setenv(name, value)
    assert main(["psa", "push", "--user", desk.tech.email]) == 0
    assert "delivered 1, failed 0" in capsys.readouterr().out
    assert main(["psa", "status", "--user", desk.tech.email]) == 0
    assert "delivered connectwise ticket 101 (escalated)" in capsys.readouterr().out
    assert len(cw_api.notes[101]) == 1
