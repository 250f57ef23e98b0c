"""In from the PSA: `rflow psa pull` brings the board's open tickets into the desk, against
the loopback ConnectWise: paging, a ticket pulled twice is one ticket, an upstream change
updates it without touching its walks, a ticket closed or deleted upstream leaves the queue."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from sqlmodel import select

from rflow_tui.models import L1WalkSession, PsaOutboxItem, Ticket
from rflow_tui.services import psa_pull
from rflow_tui.services.tickets import add_ticket, list_open_tickets
from rflow_tui.services.walks import endings as walk_endings
from rflow_tui.services.walks import start as walk_start
from tests.fake_psa import CW_ENV, FakeConnectWise, connectwise_adapter

QUEUE = "/service/tickets"


@pytest.fixture
def cw_api():
    api = FakeConnectWise()
    api.add_ticket(101, "Outlook will not open", description="since the update\nyesterday", contact="Ann Lee")
    for n in range(102, 108):
        api.add_ticket(n, f"Printer {n} offline")
    api.add_ticket(201, "New starter laptop", board="Projects")  # another board
    api.add_ticket(202, "Old one", closed=True)
    yield api
    api.close()


@pytest.fixture
async def cw(cw_api):
    adapter = connectwise_adapter(cw_api, timeout_seconds=2)
    yield adapter
    await adapter.aclose()


async def psa_tickets(db) -> dict[str, Ticket]:
    await db.rollback()
    rows = await db.exec(select(Ticket).where(Ticket.ticket_kind == "psa").execution_options(populate_existing=True))
    return {row.ticket_id: row for row in rows}


async def test_a_pull_pages_through_the_boards_open_tickets_and_keeps_what_the_desk_shows(db, desk, cw, cw_api):
    report = await psa_pull.pull(db, actor=desk.tech, adapter=cw, page_size=3)
    assert (report.new, report.updated, report.skipped, report.closed) == (7, 0, 0, 0)
    assert cw_api.count("GET", QUEUE) == 3  # 3 + 3 + 1: the short page ends it
    assert [seen.query["page"] for seen in cw_api.requests if seen.path == QUEUE] == [["1"], ["2"], ["3"]]
    tickets = await psa_tickets(db)
    assert sorted(tickets) == [str(n) for n in range(101, 108)]  # neither the other board nor the closed one
    outlook = tickets["101"]
    assert (outlook.subject, outlook.body, outlook.requester) == (
        "Outlook will not open",
        "since the update\nyesterday",
        "Ann Lee",
    )
    assert (outlook.psa_system, outlook.priority, outlook.status) == ("connectwise", "Priority 3 - Normal", "open")
    assert outlook.psa_url and "service_recid=101" in outlook.psa_url and outlook.psa_updated_at is not None
    queue = [t.ticket_id for t in await list_open_tickets(db, actor=desk.tech, limit=50)]
    assert set(queue) >= {"101", "107", "T-1"}


async def test_a_ticket_pulled_twice_is_one_ticket(db, desk, cw):
    await psa_pull.pull(db, actor=desk.tech, adapter=cw)
    again = await psa_pull.pull(db, actor=desk.tech, adapter=cw)
    assert (again.new, again.updated, again.skipped, again.closed) == (0, 0, 7, 0)
    rows = list(await db.exec(select(Ticket.ticket_id).where(Ticket.ticket_id == "101")))
    assert rows == ["101"]


async def test_a_change_upstream_updates_the_ticket_and_its_walk_goes_on_to_the_outbox(db, desk, cw, cw_api):
    await psa_pull.pull(db, actor=desk.tech, adapter=cw)
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="101", ticket_kind="psa")
    cw_api.change_ticket(101, summary="Outlook crashes on start", priority={"id": 1, "name": "Priority 1 - Critical"})
    report = await psa_pull.pull(db, actor=desk.tech, adapter=cw)
    assert (report.new, report.updated, report.skipped) == (0, 1, 6)
    ticket = (await psa_tickets(db))["101"]
    assert (ticket.subject, ticket.priority) == ("Outlook crashes on start", "Priority 1 - Critical")
    kept = (await db.exec(select(L1WalkSession).where(L1WalkSession.id == walk.id))).one()
    assert (kept.ticket_id, kept.status) == ("101", "active")  # the tech's walk is untouched
    await walk_endings.resolve(db, actor=desk.tech, session_id=walk.id, helpful=True, resolution_notes="safe mode")
    [item] = list(await db.exec(select(PsaOutboxItem)))
    assert (item.ticket_id, item.psa_system, item.outcome) == ("101", "connectwise", "resolved")


async def test_a_ticket_closed_or_deleted_upstream_leaves_the_desks_queue(db, desk, cw, cw_api):
    await psa_pull.pull(db, actor=desk.tech, adapter=cw)
    cw_api.change_ticket(102, closedFlag=True)
    cw_api.delete_ticket(103)
    report = await psa_pull.pull(db, actor=desk.tech, adapter=cw)
    assert (report.new, report.updated, report.closed) == (0, 0, 2)
    tickets = await psa_tickets(db)
    assert (tickets["102"].status, tickets["103"].status, tickets["104"].status) == ("resolved", "resolved", "open")
    queue = {t.ticket_id for t in await list_open_tickets(db, actor=desk.tech, limit=50)}
    assert "102" not in queue and "103" not in queue and "104" in queue
    cw_api.change_ticket(102, closedFlag=False)  # reopened upstream: back on the desk
    back = await psa_pull.pull(db, actor=desk.tech, adapter=cw)
    assert back.updated == 1 and (await psa_tickets(db))["102"].status == "open"


async def test_an_id_the_desk_holds_as_its_own_ticket_is_left_alone_and_named(db, desk, cw):
    await add_ticket(db, actor=desk.tech, ticket_id="105", subject="our own 105")
    report = await psa_pull.pull(db, actor=desk.tech, adapter=cw)
    assert report.new == 6 and report.conflicts == ["105"] and "105" in psa_pull.summary(report)
    await db.rollback()
    own = (await db.exec(select(Ticket).where(Ticket.ticket_id == "105"))).one()
    assert (own.ticket_kind, own.subject) == ("internal", "our own 105")


async def test_untrusted_ticket_text_is_stored_without_terminal_escapes(db, desk, cw, cw_api):
    cw_api.change_ticket(104, summary="\x1b[2J\x1b[31mURGENT\x1b[0m call\u202eme", contactName="Eve\x07")
    await psa_pull.pull(db, actor=desk.tech, adapter=cw)
    ticket = (await psa_tickets(db))["104"]
    assert (ticket.subject, ticket.requester) == ("URGENT callme", "Eve")


async def test_pulling_changes_asks_only_for_what_changed_since_the_newest_held(db, desk, cw, cw_api):
    await psa_pull.pull(db, actor=desk.tech, adapter=cw)
    cw_api.change_ticket(106, summary="Printer 106 jams")
    cw_api.add_ticket(108, "Mouse dead")
    report = await psa_pull.pull_changes(db, actor=desk.tech, adapter=cw)
    assert (report.new, report.updated) == (1, 1)
    last = [seen for seen in cw_api.requests if seen.path == QUEUE][-1]
    assert "lastUpdated > [" in last.query["conditions"][0]
    assert len(await psa_tickets(db)) == 8


async def test_watch_waits_a_429s_retry_after_before_polling_again(db, desk, cw, cw_api):
    cw.http.max_retry_wait = 0.1  # longer Retry-After values come back to the watch, as a real one's would
    cw_api.fail("GET", QUEUE, 429, headers={"Retry-After": "1"})
    said: list[str] = []
    polls = await psa_pull.watch(db, actor=desk.tech, adapter=cw, every=0.05, say=said.append, polls=2)
    assert polls == 2 and "rate limited, retry after 1 s" in said[0] and "new 7" in said[1]
    first, second = [seen.at for seen in cw_api.requests if seen.path == QUEUE][:2]
    assert second - first >= 0.95


async def test_watch_ends_on_keys_that_are_refused(db, desk, cw, cw_api):
    from rflow_tui.psa.base import PsaAuthError

    cw_api.fail("GET", QUEUE, 401)
    with pytest.raises(PsaAuthError, match="check the keys"):
        await psa_pull.watch(db, actor=desk.tech, adapter=cw, every=0.05, say=print, polls=5)
    assert cw_api.count("GET", QUEUE) == 1


# --- the command ---------------------------------------------------------------------


def configure(tmp_path, monkeypatch, db_url, psa: str, env: dict[str, str]) -> None:
    config = tmp_path / "config.toml"
    config.write_text(psa)
    for name in CW_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in {**env, "RFLOW_CONFIG": str(config), "RFLOW_DATABASE_URL": db_url}.items():
        monkeypatch.setenv(name, value)


def cw_config(api: FakeConnectWise) -> str:
    return f'[psa]\nkind = "connectwise"\napi_url = "{api.url}"\ncompany = "contoso"\nboard = "Help Desk"\n'


def test_the_cli_pulls_and_says_the_counts(db_url, desk, cw_api, tmp_path, monkeypatch, capsys):
    from rflow_tui.cli import main

    configure(tmp_path, monkeypatch, db_url, cw_config(cw_api), CW_ENV)
    assert main(["psa", "pull", "--user", desk.tech.email]) == 0
    assert capsys.readouterr().out.strip() == "new 7, updated 0, skipped 0, closed 0"
    assert main(["psa", "pull", "--json", "--user", desk.tech.email]) == 0
    assert '"skipped": 7' in capsys.readouterr().out
    assert main(["tickets", "list", "--sort", "id", "--user", desk.tech.email]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["101", "connectwise", "open", "Priority"] and "Outlook will not open" in lines[0]
    assert [line.split()[:2] for line in lines if line.startswith("T-1 ")] == [["T-1", "internal"]]
    assert main(["tickets", "list", "--json", "--search", "outlook", "--user", desk.tech.email]) == 0
    rows = {row["ticket_id"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"101", "T-1"} and "service_recid=101" in rows["101"]["link"] and rows["T-1"]["link"] is None


@pytest.mark.parametrize(
    ("psa", "env", "said"),
    [
        ("", CW_ENV, "no PSA is configured: set kind in the [psa] table"),
        (None, {"RFLOW_PSA_PUBLIC_KEY": "pub"}, "ConnectWise needs RFLOW_PSA_PRIVATE_KEY, RFLOW_PSA_CLIENT_ID"),
    ],
)
def test_the_cli_says_what_is_missing_without_a_traceback(
    db_url, desk, cw_api, tmp_path, monkeypatch, capsys, psa, env, said
):
    from rflow_tui.cli import main

    configure(tmp_path, monkeypatch, db_url, cw_config(cw_api) if psa is None else psa, env)
    for command in (["psa", "pull"], ["psa", "pull", "--watch"], ["psa", "push"]):
        assert main([*command, "--user", desk.tech.email]) == 2
        err = capsys.readouterr().err
        assert said in err and "Traceback" not in err
    assert cw_api.requests == []


def test_ctrl_c_ends_a_watch_cleanly(db_url, desk, cw_api, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(cw_config(cw_api))
    env = {**os.environ, **CW_ENV, "RFLOW_CONFIG": str(config), "RFLOW_DATABASE_URL": db_url, "RFLOW_USER": ""}
    watcher = subprocess.Popen(
        [sys.executable, "-m", "rflow_tui.cli", "psa", "pull", "--watch", "--every", "5", "--user", desk.tech.email],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while cw_api.count("GET", QUEUE) == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # the first pull is written and the watch sleeps
    watcher.send_signal(signal.SIGINT)
    out, err = watcher.communicate(timeout=30)
    assert watcher.returncode == 0, err
    assert "new 7, updated 0" in out and out.strip().endswith("stopped watching")
    assert "Traceback" not in err
    assert asyncio.run(count_psa_tickets(db_url)) == 7


async def count_psa_tickets(db_url: str) -> int:
    from rflow_tui.db import open_store

    engine, open_db = await open_store(db_url)
    try:
        async with open_db() as db:
            return len(list(await db.exec(select(Ticket.id).where(Ticket.ticket_kind == "psa"))))
    finally:
        await engine.dispose()
