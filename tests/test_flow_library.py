"""The flow library: importing (all or nothing, versions), the starter set, matching tickets."""

from __future__ import annotations

import copy

import pytest
from sqlmodel import select

from rflow_tui.flows.format import FORMAT
from rflow_tui.models import AuditLog, Flow
from rflow_tui.services import library
from rflow_tui.services.errors import AccessDenied, NotFound, ValidationFailed
from rflow_tui.services.library import FlowProblems
from tests.conftest import make_desk

DOC = {
    "format": FORMAT,
    "title": "Printer offline",
    "category": "printing",
    "match_keywords": ["printer", "offline"],
    "start": "on",
    "nodes": [
        {"id": "on", "type": "question", "text": "Is the printer on?", "yes": "test", "no": "switch"},
        {"id": "switch", "type": "instruction", "text": "Switch it on.", "next": "test"},
        {"id": "test", "type": "question", "text": "Does a test page print?", "yes": "done", "no": "esc"},
        {"id": "done", "type": "resolution", "text": "Resolved."},
        {"id": "esc", "type": "escalate", "text": "Escalate."},
    ],
}


async def test_import_stores_the_flow_and_audits_it(db, desk):
    flow = await library.import_flow_doc(db, actor=desk.engineer, doc=DOC, source="printer.json")
    assert (flow.slug, flow.version, flow.is_current, flow.title) == ("printer-offline", 1, True, "Printer offline")
    assert flow.match_keywords == ["printer", "offline"]
    entry = (await db.exec(select(AuditLog).where(AuditLog.action == "flow.import"))).one()
    assert entry.target_id == str(flow.id) and entry.details["source"] == "printer.json"


async def test_a_failing_document_imports_nothing_and_lists_every_problem(db, desk):
    doc = copy.deepcopy(DOC)
    doc["nodes"][0]["no"] = "nowhere"
    doc["nodes"][2]["yes_label"] = ""
    with pytest.raises(FlowProblems) as caught:
        await library.import_flow_doc(db, actor=desk.owner, doc=doc, source="bad.json")
    assert {p.path for p in caught.value.problems} >= {"$.nodes[0].no", "$.nodes[2].yes_label"}
    assert "$.nodes[0].no" in str(caught.value) and "nothing was imported" in str(caught.value)
    assert (await db.exec(select(Flow))).all() == []


async def test_the_same_slug_becomes_a_new_version_and_the_old_one_is_kept(db, desk):
    first = await library.import_flow_doc(db, actor=desk.owner, doc=DOC, source="v1")
    changed = copy.deepcopy(DOC)
    changed["nodes"][1]["text"] = "Switch it on at the wall and at the printer."
    second = await library.import_flow_doc(db, actor=desk.owner, doc=changed, source="v2", new_version=True)
    assert (second.slug, second.version) == (first.slug, 2)
    current = await library.list_flows(db, actor=desk.tech)
    assert [(f.id, f.version) for f in current] == [(second.id, 2)]
    every = await library.list_flows(db, actor=desk.tech, current_only=False)
    assert [(f.version, f.is_current) for f in every] == [(2, True), (1, False)]
    assert (await library.get_flow(db, actor=desk.tech, flow_id=first.id)).flow_data["nodes"][1][
        "text"
    ] == "Switch it on."


async def test_a_changed_document_with_a_known_slug_is_refused_without_new_version(db, desk):
    first = await library.import_flow_doc(db, actor=desk.owner, doc=DOC, source="v1")
    changed = copy.deepcopy(DOC)
    changed["nodes"][1]["text"] = "Switch it on at the wall and at the printer."
    with pytest.raises(ValidationFailed, match=r"already has 'printer-offline' \(v1\).*--new-version"):
        await library.import_flow_doc(db, actor=desk.owner, doc=changed, source="v2.json")
    every = await library.list_flows(db, actor=desk.tech, current_only=False)
    assert [(f.id, f.version) for f in every] == [(first.id, 1)]


async def test_a_new_slug_with_a_title_already_in_the_library_is_refused(db, desk):
    await library.import_flow_doc(db, actor=desk.owner, doc=DOC, source="v1")
    twin = {**copy.deepcopy(DOC), "slug": "printer-offline-2", "title": "PRINTER OFFLINE"}
    with pytest.raises(ValidationFailed, match="a flow titled 'Printer offline' is already in the library"):
        await library.import_flow_doc(db, actor=desk.owner, doc=twin, source="twin.json")


async def test_the_starter_library_leaves_a_desk_edited_flow_alone(db, desk):
    (_name, doc), *_ = library.starter_documents()
    edited = {**copy.deepcopy(doc), "description": "Our own wording."}
    mine = await library.import_flow_doc(db, actor=desk.owner, doc=edited, source="ours.json")
    installed = await library.install_starter_library(db, actor=desk.owner)
    assert mine.id in [f.id for f in installed]
    assert (await library.get_flow(db, actor=desk.tech, flow_id=mine.id)).is_current


async def test_reimporting_an_identical_document_adds_no_version(db, desk):
    first = await library.import_flow_doc(db, actor=desk.owner, doc=DOC, source="a")
    again = await library.import_flow_doc(db, actor=desk.owner, doc=DOC, source="b")
    assert again.id == first.id
    assert len(await library.list_flows(db, actor=desk.owner, current_only=False)) == 1


async def test_only_engineers_and_above_import(db, desk):
    with pytest.raises(AccessDenied):
        await library.import_flow_doc(db, actor=desk.tech, doc=DOC, source="x")


async def test_export_then_import_round_trips(db, desk):
    flow = await library.import_flow_doc(db, actor=desk.owner, doc=DOC, source="x")
    exported = library.flow_document(flow)
    assert exported["version"] == 1 and exported["slug"] == "printer-offline"
    assert exported["nodes"] == DOC["nodes"] and exported["start"] == DOC["start"]
    other = await make_desk(db, name="Fabrikam", domain="fabrikam.test")
    copied = await library.import_flow_doc(db, actor=other.owner, doc=exported, source="export")
    assert library.flow_document(copied) == exported


async def test_flows_are_scoped_to_the_account(db, desk):
    flow = await library.import_flow_doc(db, actor=desk.owner, doc=DOC, source="x")
    other = await make_desk(db, name="Fabrikam", domain="fabrikam.test")
    assert await library.list_flows(db, actor=other.tech) == []
    with pytest.raises(NotFound):
        await library.get_flow(db, actor=other.tech, flow_id=flow.id)
    assert await library.match_flows(db, actor=other.tech, subject="printer offline", body="") == []


async def test_the_starter_library_installs_once(db, desk):
    installed = await library.install_starter_library(db, actor=desk.owner)
    assert len(installed) >= 12 and len({f.slug for f in installed}) == len(installed)
    again = await library.install_starter_library(db, actor=desk.owner)
    assert [f.id for f in again] == [f.id for f in installed]
    assert len(await library.list_flows(db, actor=desk.tech, current_only=False)) == len(installed)


@pytest.mark.parametrize(
    "subject, body, expected",
    [
        (
            "Outlook will not open",
            "Since this morning Outlook hangs on the splash screen",
            "outlook-not-opening-syncing",
        ),
        ("Printer on 3rd floor offline", "", "printer-offline"),
        ("Can't connect to VPN from home", "AnyConnect says login failed", "vpn-will-not-connect"),
        ("Locked out", "I forgot my password and now my account is locked", "password-reset-lockout"),
        ("New phone", "I got a new phone and my authenticator app is gone", "mfa-device-lost"),
        ("Suspicious email", "Got an email asking me to verify my account, I think it's phishing", "phishing-report"),
        ("S: drive missing", "My mapped drive has a red X", "mapped-drive-missing"),
        ("Laptop is really slow", "it freezes every few minutes", "slow-pc"),
        ("Nobody can hear me in Teams", "my headset mic doesn't work in meetings", "teams-audio-camera"),
        ("OneDrive not syncing", "files not updating on my other laptop", "onedrive-not-syncing"),
        ("Wi-Fi keeps dropping", "", "wifi-drops"),
        ("New starter Monday", "please check the new user's setup on their first day", "new-starter-setup-check"),
    ],
)
async def test_matching_ranks_the_right_starter_flow_first(db, desk, subject, body, expected):
    await library.install_starter_library(db, actor=desk.owner)
    ranked = await library.match_flows(db, actor=desk.tech, subject=subject, body=body)
    assert ranked and ranked[0][0].slug == expected, [(f.slug, s) for f, s in ranked]
    scores = [s for _, s in ranked]
    assert scores == sorted(scores, reverse=True) and len(ranked) <= 5


async def test_the_subject_outweighs_the_body_and_unrelated_flows_are_left_out(db, desk):
    await library.install_starter_library(db, actor=desk.owner)
    ranked = await library.match_flows(db, actor=desk.tech, subject="Printer offline", body="also outlook is slow")
    assert ranked[0][0].slug == "printer-offline"
    assert await library.match_flows(db, actor=desk.tech, subject="Desk chair broken", body="") == []
