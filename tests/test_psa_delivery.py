"""Draining the outbox several items at once (``psa_delivery.drain``, what `rflow psa push`
runs) against the loopback ConnectWise: each walk's note exactly once whatever fails, the
concurrency capped, a 500 retried, a 401 failed for good, statuses set per outcome."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlmodel import select

from rflow_tui.models import PsaOutboxItem, utcnow
from rflow_tui.psa.base import MARKER_PREFIX
from rflow_tui.services.psa_delivery import drain
from rflow_tui.services.tickets import add_ticket
from rflow_tui.services.walks import endings as walk_endings
from rflow_tui.services.walks import start as walk_start
from tests.fake_psa import FakeConnectWise, connectwise_adapter

STATUSES = {"resolved": "Completed", "escalated": "Escalated to L2"}
ANY_NOTES = r"/service/tickets/\d+/notes"
TICKETS = range(301, 313)


@pytest.fixture
def cw_api():
    api = FakeConnectWise()
    for n in TICKETS:
        api.add_ticket(n, f"Ticket {n}")
    yield api
    api.close()


@pytest.fixture
async def cw(cw_api):
    adapter = connectwise_adapter(cw_api, timeout_seconds=0.5, max_concurrency=3)
    yield adapter
    await adapter.aclose()


async def end_walks(db, desk, ids=TICKETS, *, resolve: bool = False) -> None:
    for n in ids:
        await add_ticket(
            db, actor=desk.tech, ticket_id=str(n), subject=f"Ticket {n}", ticket_kind="psa", psa_system="connectwise"
        )
        walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id=str(n), ticket_kind="psa")
        if resolve:
            await walk_endings.resolve(db, actor=desk.tech, session_id=walk.id, helpful=True, resolution_notes="ok")
        else:
            await walk_endings.escalate(db, actor=desk.tech, session_id=walk.id, reason="r", reason_category="other")


def marked_notes(api: FakeConnectWise) -> dict[int, list[str]]:
    """Every marker on every ticket's notes: a duplicate shows as a marker twice."""
    pattern = re.compile(re.escape(f"[{MARKER_PREFIX}") + r"([0-9a-f]+)\]")
    return {n: [m for note in notes for m in pattern.findall(note["text"])] for n, notes in api.notes.items()}


async def states(db) -> list[str]:
    await db.rollback()
    return [item.state for item in await db.exec(select(PsaOutboxItem).order_by(PsaOutboxItem.id))]


async def test_several_items_are_in_flight_at_once_but_never_more_than_the_cap(store, db, desk, cw, cw_api):
    _, open_db = store
    await end_walks(db, desk)
    cw_api.latency = 0.1
    drained = await drain(open_db, actor=desk.tech, adapter=cw, statuses=STATUSES, concurrency=3)
    assert (drained.delivered, drained.failed, drained.waiting) == (12, 0, 0)
    assert 2 <= cw_api.peak <= 3
    assert all(len(markers) == 1 for markers in marked_notes(cw_api).values())
    assert {cw_api.tickets[n]["status"]["name"] for n in TICKETS} == {"Escalated to L2"}


async def test_every_note_arrives_exactly_once_through_timeouts_after_commit_and_500s(store, db, desk, cw, cw_api):
    _, open_db = store
    await end_walks(db, desk)
    cw_api.fail("POST", ANY_NOTES, 200, hang=1.0, times=3)  # stored, but the answer comes too late
    cw_api.fail("POST", ANY_NOTES, 500, times=3)  # refused before anything was stored
    first = await drain(open_db, actor=desk.tech, adapter=cw, statuses=STATUSES, concurrency=3)
    assert (first.delivered, first.waiting) == (6, 6)
    later = utcnow() + timedelta(hours=2)
    second = await drain(open_db, actor=desk.tech, adapter=cw, statuses=STATUSES, concurrency=3, now=later)
    assert (second.delivered, second.waiting) == (6, 0)
    assert await states(db) == ["delivered"] * 12
    assert sorted(len(markers) for markers in marked_notes(cw_api).values()) == [1] * 12
    assert cw_api.count("POST", ANY_NOTES) == 12 + 3  # the 500s posted again; the timeouts found their note


async def test_a_500_then_success_delivers_on_the_next_push(store, db, desk, cw, cw_api):
    _, open_db = store
    await end_walks(db, desk, [301])
    cw_api.fail("POST", ANY_NOTES, 500)
    first = await drain(open_db, actor=desk.tech, adapter=cw, statuses=STATUSES)
    assert first.waiting == 1 and cw_api.notes[301] == []
    await db.rollback()
    [item] = list(await db.exec(select(PsaOutboxItem)))
    assert "answered 500" in (item.last_error or "") and item.next_attempt_at > utcnow() + timedelta(seconds=20)
    second = await drain(open_db, actor=desk.tech, adapter=cw, statuses=STATUSES, now=utcnow() + timedelta(minutes=1))
    assert second.delivered == 1 and len(cw_api.notes[301]) == 1


async def test_a_short_retry_after_is_waited_inside_the_push(store, db, desk, cw, cw_api):
    _, open_db = store
    await end_walks(db, desk, [301])
    cw_api.fail("POST", ANY_NOTES, 429, headers={"Retry-After": "1"})
    drained = await drain(open_db, actor=desk.tech, adapter=cw, statuses=STATUSES)
    assert drained.delivered == 1 and len(cw_api.notes[301]) == 1
    first, second = [seen.at for seen in cw_api.requests if seen.method == "POST"]
    assert second - first >= 0.95


async def test_refused_keys_fail_the_items_and_no_later_push_tries_them_again(store, db, desk, cw, cw_api):
    _, open_db = store
    await end_walks(db, desk, [301, 302])
    cw_api.fail("POST", ANY_NOTES, 401, times=2)
    drained = await drain(open_db, actor=desk.tech, adapter=cw, statuses=STATUSES)
    assert (drained.delivered, drained.failed) == (0, 2) and await states(db) == ["failed", "failed"]
    tomorrow = utcnow() + timedelta(days=1)
    again = await drain(open_db, actor=desk.tech, adapter=cw, statuses=STATUSES, now=tomorrow)
    assert (again.delivered, again.failed, again.waiting) == (0, 0, 0)
    assert cw_api.count("POST", ANY_NOTES) == 2


async def test_a_resolved_walk_sets_the_resolved_status_and_an_escalated_one_the_escalated(store, db, desk, cw, cw_api):
    _, open_db = store
    await end_walks(db, desk, [301], resolve=True)
    await end_walks(db, desk, [302])
    assert (await drain(open_db, actor=desk.tech, adapter=cw, statuses=STATUSES)).delivered == 2
    assert (cw_api.tickets[301]["status"]["name"], cw_api.tickets[302]["status"]["name"]) == (
        "Completed",
        "Escalated to L2",
    )
    [note] = cw_api.notes[302]
    assert note["internalAnalysisFlag"] is True and "Ticket 302" in note["text"]
