"""The running app delivers what walks owe the PSA (``services.psa_sync``) and their alerts, against the
loopback ConnectWise: no tech has to run ``rflow psa push``, a note is posted once, a walk
that ends is delivered at once, and a PSA that cannot be used is said in words."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from rflow_tui.config import PsaSettings, Settings
from rflow_tui.services.psa_sync import keep_in_sync
from rflow_tui.services.tickets import add_ticket
from rflow_tui.services.walks import endings as walk_endings
from rflow_tui.services.walks import start as walk_start
from tests.fake_psa import CW_ENV, FakeConnectWise
from tests.tui_support import fill_escalation, make_app, open_resumed_walk, wait_for


@pytest.fixture
def cw_api(monkeypatch):
    for key, value in CW_ENV.items():
        monkeypatch.setenv(key, value)
    api = FakeConnectWise()
    for n in (501, 502):
        api.add_ticket(n, f"Ticket {n}")
    yield api
    api.close()


def psa_settings(api: FakeConnectWise, **more) -> PsaSettings:
    base = {"kind": "connectwise", "api_url": api.url, "company": "contoso", "board": "Help Desk"}
    return PsaSettings(**{**base, "escalated_status": "Escalated to L2", **more})


async def psa_walk(db, desk, ticket_id: str):
    await add_ticket(
        db, actor=desk.tech, ticket_id=ticket_id, subject="Outlook", ticket_kind="psa", psa_system="connectwise"
    )
    return await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id=ticket_id, ticket_kind="psa")


async def test_the_companion_delivers_what_is_due_at_once_and_each_ended_walk_when_woken(store, db, desk, cw_api):
    _, open_db = store
    walk = await psa_walk(db, desk, "501")
    await walk_endings.escalate(db, actor=desk.tech, session_id=walk.id, reason="profile", reason_category="other")
    wake, told = asyncio.Event(), []
    settings = replace(Settings(), psa=psa_settings(cw_api, app_sync_seconds=3600))
    companion = asyncio.create_task(
        keep_in_sync(open_db, user=lambda: desk.tech, settings=settings, wake=wake, tell=told.append)
    )
    try:
        await asyncio.wait_for(_until(lambda: len(cw_api.notes.get(501, [])) == 1), 15)
        await asyncio.wait_for(_delivered(open_db, 1), 15)  # and recorded: the companion is idle now
        await db.rollback()  # this session's snapshot predates the companion's writes
        walk = await psa_walk(db, desk, "502")
        await walk_endings.escalate(db, actor=desk.tech, session_id=walk.id, reason="disk", reason_category="other")
        wake.set()  # a walk ended: not an hour from now
        await asyncio.wait_for(_until(lambda: len(cw_api.notes.get(502, [])) == 1), 15)
    finally:
        companion.cancel()
        await asyncio.gather(companion, return_exceptions=True)
    assert len(cw_api.notes[501]) == 1 and cw_api.tickets[501]["status"]["name"] == "Escalated to L2"
    assert told == []  # nothing went wrong, nothing to say


async def test_a_psa_whose_keys_are_missing_is_said_once_and_nothing_is_called(store, desk, cw_api, monkeypatch):
    _, open_db = store
    monkeypatch.delenv("RFLOW_PSA_PRIVATE_KEY")
    told: list[str] = []
    settings = replace(Settings(), psa=psa_settings(cw_api))
    await asyncio.wait_for(
        keep_in_sync(open_db, user=lambda: desk.tech, settings=settings, wake=asyncio.Event(), tell=told.append), 15
    )
    assert len(told) == 1 and told[0].startswith("PSA delivery is off:") and "RFLOW_PSA_PRIVATE_KEY" in told[0]
    assert cw_api.requests == []


async def test_a_walk_escalated_in_the_app_reaches_the_psa_without_rflow_psa_push(store, db, desk, cw_api):
    await psa_walk(db, desk, "501")
    app = make_app(store, desk.tech, psa=psa_settings(cw_api, app_sync_seconds=3600))
    async with app.run_test(size=(130, 40)) as pilot:
        await open_resumed_walk(pilot, app)
        await fill_escalation(pilot, app, reason="Fan failing, needs replacement")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: len(cw_api.notes.get(501, [])) == 1)
    assert "Fan failing, needs replacement" in cw_api.notes[501][0]["text"]


async def _until(predicate) -> None:
    while not predicate():
        await asyncio.sleep(0.02)


async def test_an_app_whose_config_has_alert_urls_sends_the_alert_of_a_walk_it_escalates(store, db, desk):
    """No `rflow alerts push` running: the escalating app's own pass sends it, once."""
    from rflow_tui.config import AlertSettings
    from tests.fake_alerts import FakeWebhook

    hook = FakeWebhook()
    try:
        await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")
        app = make_app(store, desk.tech, alerts=AlertSettings(urls=(hook.url(),), timeout_seconds=1.0))
        async with app.run_test(size=(130, 40)) as pilot:
            await open_resumed_walk(pilot, app)
            await fill_escalation(pilot, app, reason="Disk clicking on boot")
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: len(hook.accepted) == 1)
        assert len(hook.accepted) == 1 and "Disk clicking on boot" in hook.accepted[0].message
    finally:
        hook.close()


async def _delivered(open_db, count: int) -> None:
    from sqlmodel import select

    from rflow_tui.models import PsaOutboxItem

    while True:
        async with open_db() as fresh:
            states = [item.state for item in await fresh.exec(select(PsaOutboxItem))]
        if states.count("delivered") == count:
            return
        await asyncio.sleep(0.02)
