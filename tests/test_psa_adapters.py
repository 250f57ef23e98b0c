"""The ConnectWise and Zendesk adapters against loopback fakes of their APIs (tests/fake_psa.py).

Real HTTP on 127.0.0.1, faults injected by the fake: what a desk sees when the PSA
refuses the keys, rate-limits, fails, times out after committing, or lost a ticket.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import replace
from datetime import datetime

import pytest

from rflow_tui.config import PsaSettings
from rflow_tui.psa.base import (
    PsaAuthError,
    PsaNotFound,
    PsaRateLimited,
    PsaUnavailable,
    find_marked_note,
    marker,
)
from rflow_tui.psa.connectwise import ConnectWiseAdapter
from rflow_tui.psa.registry import NoPsaConfigured, make_adapter
from rflow_tui.psa.zendesk import ZendeskAdapter
from tests.fake_psa import CW_ENV, FakeConnectWise, FakeZendesk

ZD_ENV = {"RFLOW_PSA_EMAIL": "agent@contoso.test", "RFLOW_PSA_TOKEN": "tok"}


@pytest.fixture
def cw_api():
    api = FakeConnectWise()
    for n in range(1, 6):
        api.add_ticket(100 + n, f"Outlook problem {n}", description=f"details {n}")
    api.add_ticket(200, "Closed one", closed=True)
    api.add_ticket(300, "Other board", board="Projects")
    yield api
    api.close()


@pytest.fixture
def zd_api():
    api = FakeZendesk()
    for n in range(1, 6):
        api.add_ticket(100 + n, f"Laptop problem {n}", description=f"details {n}")
    api.add_ticket(200, "Solved one", status="solved")
    api.add_ticket(300, "Other group", group="Facilities")
    yield api
    api.close()


def cw_settings(api: FakeConnectWise, **changes) -> PsaSettings:
    base = PsaSettings(kind="connectwise", api_url=api.url, company="contoso", board="Help Desk")
    return replace(base, **changes)


def zd_settings(api: FakeZendesk, **changes) -> PsaSettings:
    return replace(PsaSettings(kind="zendesk", api_url=api.url, board="IT Support"), **changes)


@pytest.fixture
async def cw(cw_api):
    adapter = make_adapter(cw_settings(cw_api), CW_ENV)
    assert isinstance(adapter, ConnectWiseAdapter)
    adapter.http.backoff = 0.01
    yield adapter
    await adapter.aclose()


@pytest.fixture
async def zd(zd_api):
    adapter = make_adapter(zd_settings(zd_api), ZD_ENV)
    assert isinstance(adapter, ZendeskAdapter)
    adapter.http.backoff = 0.01
    yield adapter
    await adapter.aclose()


async def collect(iterator):
    return [item async for item in iterator]


# --- ConnectWise -----------------------------------------------------------------------


async def test_cw_whoami_sends_company_login_and_client_id(cw, cw_api):
    assert "ConnectWise v2026.1" in await cw.whoami()
    seen = cw_api.requests[-1]
    assert seen.headers["clientId"] == "cid"


async def test_cw_wrong_keys_are_an_auth_error(cw_api):
    adapter = make_adapter(cw_settings(cw_api), {**CW_ENV, "RFLOW_PSA_PRIVATE_KEY": "wrong"})
    with pytest.raises(PsaAuthError, match="401"):
        await adapter.whoami()
    await adapter.aclose()


async def test_cw_queue_pages_through_the_board_open_tickets_only(cw, cw_api):
    tickets = await collect(cw.list_queue(page_size=2))
    assert [t.id for t in tickets] == ["101", "102", "103", "104", "105"]
    first = tickets[0]
    assert (first.subject, first.description, first.requester) == ("Outlook problem 1", "details 1", "Bob Requester")
    assert first.priority == "Priority 3 - Normal" and first.status == "New" and not first.closed
    assert "service_recid=101" in first.url and "companyName=contoso" in first.url
    pages = [s for s in cw_api.requests if s.path == "/service/tickets"]
    assert [s.query["page"] for s in pages] == [["1"], ["2"], ["3"]]
    assert pages[0].query["conditions"] == ['board/name="Help Desk" and closedFlag=false']


async def test_cw_changed_since_asks_for_last_updated(cw, cw_api):
    since = datetime.fromisoformat(cw_api.tickets[104]["_info"]["lastUpdated"].replace("Z", "+00:00"))
    changed = await collect(cw.changed_since(since))
    assert [(t.id, t.closed) for t in changed] == [("105", False), ("200", True)]  # a closed one too: a pull sees it go


async def test_cw_note_is_internal_and_carries_its_marker(cw, cw_api):
    note = await cw.post_note("101", "Walk resolved: <b>not markup</b>", "7.abc")
    stored = cw_api.notes[101][0]
    assert stored["internalAnalysisFlag"] is True and stored["detailDescriptionFlag"] is False
    assert stored["text"].endswith(marker("7.abc")) and "<b>not markup</b>" in stored["text"]
    assert note.id == str(stored["id"])
    assert (await find_marked_note(cw, "101", "7.abc")) is not None
    assert (await find_marked_note(cw, "101", "8.abc")) is None


async def test_cw_public_visibility_uses_the_detail_description_flag(cw_api):
    adapter = make_adapter(cw_settings(cw_api, note_visibility="public"), CW_ENV)
    await adapter.post_note("101", "hello", "1.x")
    assert cw_api.notes[101][0]["detailDescriptionFlag"] is True
    assert cw_api.notes[101][0]["internalAnalysisFlag"] is False
    await adapter.aclose()


async def test_cw_status_is_a_json_patch_by_name(cw, cw_api):
    await cw.set_status("102", "Resolved")
    patch = next(s for s in cw_api.requests if s.method == "PATCH")
    assert patch.body == [{"op": "replace", "path": "status", "value": {"name": "Resolved"}}]
    assert (await cw.get_ticket("102")).status == "Resolved"


async def test_cw_429_waits_for_retry_after_then_succeeds(cw, cw_api):
    cw_api.fail("GET", "/service/tickets", 429, headers={"Retry-After": "0.3"})
    started = time.monotonic()
    tickets = await collect(cw.list_queue())
    assert len(tickets) == 5
    assert time.monotonic() - started >= 0.3
    assert cw_api.count("GET", "^/service/tickets$") == 2


async def test_cw_long_retry_after_is_given_to_the_caller(cw, cw_api):
    cw_api.fail("POST", r"/service/tickets/\d+/notes", 429, headers={"Retry-After": "120"})
    with pytest.raises(PsaRateLimited) as caught:
        await cw.post_note("101", "x", "1.a")
    assert caught.value.retry_after == 120
    assert cw_api.notes[101] == []


async def test_cw_500_on_a_read_is_retried_but_a_write_is_not(cw, cw_api):
    cw_api.fail("GET", "/service/tickets/101", 500)
    assert (await cw.get_ticket("101")).id == "101"
    cw_api.fail("POST", r"/service/tickets/101/notes", 500)
    with pytest.raises(PsaUnavailable) as caught:
        await cw.post_note("101", "x", "1.a")
    assert caught.value.unclear
    assert cw_api.count("POST", "notes") == 1


async def test_cw_timeout_after_the_server_committed_is_unclear_and_the_marker_finds_it(cw_api):
    adapter = ConnectWiseAdapter(
        api_url=cw_api.url,
        company="contoso",
        public_key="pub",
        private_key="priv",
        client_id="cid",
        board="Help Desk",
        timeout=0.3,
    )
    cw_api.fail("POST", r"/service/tickets/101/notes", hang=1.0)
    with pytest.raises(PsaUnavailable) as caught:
        await adapter.post_note("101", "the transcript", "9.k")
    assert caught.value.unclear
    assert len(cw_api.notes[101]) == 1  # committed though the client saw a timeout
    assert (await find_marked_note(adapter, "101", "9.k")) is not None
    await adapter.aclose()


async def test_cw_ticket_deleted_upstream_is_not_found(cw, cw_api):
    del cw_api.tickets[103]
    with pytest.raises(PsaNotFound, match="404"):
        await cw.get_ticket("103")
    with pytest.raises(PsaNotFound):
        await cw.post_note("103", "x", "1.a")


async def test_cw_refused_connection_is_unavailable_and_clear():
    adapter = ConnectWiseAdapter(
        api_url="http://127.0.0.1:9/v4_6_release/apis/3.0",
        company="c",
        public_key="p",
        private_key="k",
        client_id="i",
        board="b",
        timeout=1,
    )
    adapter.http.backoff = 0.01
    with pytest.raises(PsaUnavailable) as caught:
        await adapter.post_note("1", "x", "1.a")
    assert not caught.value.unclear
    await adapter.aclose()


async def test_cw_concurrent_calls_are_capped_per_endpoint(cw_api):
    import asyncio

    adapter = make_adapter(cw_settings(cw_api, max_concurrency=2), CW_ENV)
    cw_api.fail("GET", r"/service/tickets/\d+", hang=0.2, times=6)
    active = peak = 0
    original = adapter.http.client.request

    async def counting(*args, **kwargs):
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        try:
            return await original(*args, **kwargs)
        finally:
            active -= 1

    adapter.http.client.request = counting
    await asyncio.gather(*(adapter.get_ticket(str(n)) for n in (101, 102, 103, 104, 105, 101)))
    assert peak == 2
    await adapter.aclose()


# --- Zendesk ---------------------------------------------------------------------------


async def test_zd_whoami_uses_the_api_token_login(zd, zd_api):
    assert "agent@contoso.test" in await zd.whoami()


async def test_zd_wrong_token_is_an_auth_error(zd_api):
    adapter = make_adapter(zd_settings(zd_api), {**ZD_ENV, "RFLOW_PSA_TOKEN": "nope"})
    with pytest.raises(PsaAuthError):
        await adapter.whoami()
    await adapter.aclose()


async def test_zd_queue_follows_cursors_through_the_group_unsolved_tickets(zd, zd_api):
    tickets = await collect(zd.list_queue(page_size=2))
    assert [t.id for t in tickets] == ["101", "102", "103", "104", "105"]
    assert tickets[0].url.endswith("/agent/tickets/101") and tickets[0].description == "details 1"
    pages = [s for s in zd_api.requests if s.path == "/api/v2/search/export"]
    assert len(pages) == 3 and "page[after]" not in pages[0].query and "page[after]" in pages[1].query
    assert pages[0].query["query"] == ['type:ticket status<solved group:"IT Support"']


async def test_zd_note_is_a_private_plain_text_comment(zd, zd_api):
    await zd.post_note("101", "Walk escalated <script>", "3.z")
    put = next(s for s in zd_api.requests if s.method == "PUT")
    comment = put.body["ticket"]["comment"]
    assert comment["public"] is False and comment["body"].endswith(marker("3.z"))
    assert "html_body" not in comment
    assert (await find_marked_note(zd, "101", "3.z")) is not None


async def test_zd_status_goes_in_the_same_put(zd, zd_api):
    await zd.set_status("101", "solved")
    assert zd_api.tickets[101]["status"] == "solved"
    assert (await zd.get_ticket("101")).closed


async def test_zd_changed_status_upstream_is_seen(zd, zd_api):
    since = zd_api.clock
    zd_api.tickets[102]["status"] = "pending"
    zd_api.tickets[102]["updated_at"] = zd_api.tick()
    changed = await collect(zd.changed_since(since))
    assert [(t.id, t.status) for t in changed] == [("102", "pending")]


async def test_zd_faults(zd, zd_api):
    zd_api.fail("GET", "/api/v2/search/export", 429, headers={"Retry-After": "0"})
    assert len(await collect(zd.list_queue())) == 5
    zd_api.fail("PUT", "/api/v2/tickets/101", 500)
    with pytest.raises(PsaUnavailable):
        await zd.post_note("101", "x", "1.a")
    del zd_api.tickets[104]
    with pytest.raises(PsaNotFound):
        await zd.set_status("104", "solved")


# --- registry, config, imports ---------------------------------------------------------


def test_missing_secrets_are_named_and_never_read_from_the_file(cw_api):
    with pytest.raises(PsaAuthError, match="RFLOW_PSA_PRIVATE_KEY"):
        make_adapter(cw_settings(cw_api), {"RFLOW_PSA_PUBLIC_KEY": "p", "RFLOW_PSA_CLIENT_ID": "c"})
    with pytest.raises(PsaAuthError, match="RFLOW_PSA_TOKEN"):
        make_adapter(PsaSettings(kind="zendesk", api_url="https://x.zendesk.com"), {"RFLOW_PSA_EMAIL": "a@b"})


def test_unknown_or_missing_kind():
    with pytest.raises(NoPsaConfigured, match="connectwise"):
        make_adapter(PsaSettings(kind="autotask"), {})
    with pytest.raises(NoPsaConfigured, match=r"\[psa\]"):
        make_adapter(PsaSettings(), {})


def test_shipped_adapters_are_entry_points():
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group="rflow.psa_adapters")}
    assert {"connectwise", "zendesk"} <= names


def test_httpx_is_imported_only_when_an_adapter_is_built():
    code = (
        "import sys, rflow_tui.config, rflow_tui.psa.registry, rflow_tui.psa.base, rflow_tui.cli\n"
        "rflow_tui.cli.build_parser()\n"
        "assert 'httpx' not in sys.modules, 'httpx imported early'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
