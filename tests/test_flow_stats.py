"""The numbers behind every node: reached, answer split, time on the step, and how the
walks that reached a node ended, per version of a flow."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from rflow_tui.cli import main
from rflow_tui.models import L1WalkSession
from rflow_tui.services import library
from rflow_tui.services.errors import AccessDenied, NotFound
from rflow_tui.services.flow_stats import flow_stats
from rflow_tui.services.tickets import add_ticket
from rflow_tui.services.walks import endings as walk_endings
from rflow_tui.services.walks import flow_steps as flow_steps
from rflow_tui.services.walks import start as walk_start
from tests.test_flow_library import DOC
from tests.walk_paths import path_of, put_path

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


async def walk(db, desk, flow, ticket, answers, *, end=None, seconds=(10, 20, 30)):
    """One walk answering ``answers`` in turn, each step ``seconds`` after the last; ``end``
    is "resolved", "escalated", "abandoned" (left for two days) or None (still going)."""
    await add_ticket(db, actor=desk.owner, ticket_id=ticket, subject="Printer offline")
    session = await walk_start.start_flow_session(db, actor=desk.tech, ticket_id=ticket, flow_id=flow.id)
    for answer in answers:
        await flow_steps.answer_flow_node(db, actor=desk.tech, session_id=session.id, answer=answer)
    if end == "resolved":
        await walk_endings.resolve(db, actor=desk.tech, session_id=session.id, helpful=True, resolution_notes="ok")
    elif end == "escalated":
        await walk_endings.escalate(db, actor=desk.tech, session_id=session.id, reason="no", reason_category="other")
    # Put the walk on a known clock, each step ``seconds`` after the last: an ended walk
    # in the past, one still going an hour ago, an abandoned one two days ago.
    began = {None: datetime.now(UTC) - timedelta(hours=1), "abandoned": datetime.now(UTC) - timedelta(days=2)}
    row = (await db.exec(select(L1WalkSession).where(L1WalkSession.id == session.id))).one()
    row.created_at = at = began.get(end, START)
    path = []
    for step, gap in zip(await path_of(db, row), seconds, strict=False):
        at += timedelta(seconds=gap)
        path.append({**step, "at": at.isoformat()})
    await put_path(db, row, path, commit=False)
    row.last_step_at = at
    if end in ("resolved", "escalated"):
        row.resolved_at = at + timedelta(seconds=60)
    db.add(row)
    await db.commit()


@pytest.fixture
async def printer(db, desk):
    return await library.import_flow_doc(db, actor=desk.owner, doc=DOC, source="test")


async def test_each_node_counts_reached_answers_time_and_endings(db, desk, printer):
    # DOC: on? (yes -> test, no -> switch) · switch -> test · test? (yes -> done, no -> esc)
    await walk(db, desk, printer, "S-1", ["yes", "yes"], end="resolved", seconds=(10, 20))
    await walk(db, desk, printer, "S-2", ["no", None, "no"], end="escalated", seconds=(30, 5, 40))
    await walk(db, desk, printer, "S-3", ["no"], end="abandoned")
    await walk(db, desk, printer, "S-4", ["yes"], end=None, seconds=(50,))

    stats = await flow_stats(db, actor=desk.engineer, slug="printer-offline")
    nodes = {n.node_id: n for n in stats.nodes}
    assert [n.node_id for n in stats.nodes] == ["on", "switch", "test", "done", "esc"]  # the flow's order
    assert {k: nodes[k].reached for k in nodes} == {"on": 4, "switch": 2, "test": 3, "done": 1, "esc": 1}
    assert dict(nodes["on"].answers) == {"Yes": 2, "No": 2} and dict(nodes["test"].answers) == {"Yes": 1, "No": 1}
    assert nodes["on"].median_seconds == 20  # 10, 30, 10 (the abandoned walk) and 50 s
    assert nodes["test"].median_seconds == 30  # 20 and 40 s
    assert (nodes["on"].escalated, nodes["on"].abandoned) == (1, 1)
    assert (nodes["switch"].escalated, nodes["switch"].abandoned) == (1, 1)
    assert (nodes["done"].escalated, nodes["esc"].escalated) == (0, 1)
    (v1,) = stats.versions
    assert (v1.walks, v1.resolved, v1.escalated, v1.abandoned, v1.in_progress) == (4, 1, 1, 1, 1)
    assert v1.resolution_rate == 0.5
    assert v1.median_walk_seconds == (30 + 60 + 75 + 60) / 2  # the two that ended: 90 s and 135 s


async def test_versions_are_counted_apart_and_nodes_by_the_version_asked(db, desk, printer):
    await walk(db, desk, printer, "S-1", ["yes", "yes"], end="resolved")
    changed = copy.deepcopy(DOC)
    changed["nodes"][0]["text"] = "Is the printer switched on at the wall?"
    await library.import_flow_doc(db, actor=desk.owner, doc=changed, source="v2", new_version=True)
    current = await library.find_flow(db, actor=desk.owner, ref="printer-offline")
    await walk(db, desk, current, "S-2", ["no", None, "no"], end="escalated")

    stats = await flow_stats(db, actor=desk.engineer, slug="printer-offline")
    assert [(v.version, v.walks, v.resolution_rate) for v in stats.versions] == [(2, 1, 0.0), (1, 1, 1.0)]
    assert stats.version == 2 and {n.node_id: n.reached for n in stats.nodes}["switch"] == 1
    old = await flow_stats(db, actor=desk.engineer, slug="printer-offline", version=1)
    assert old.version == 1 and {n.node_id: n.reached for n in old.nodes}["switch"] == 0
    with pytest.raises(NotFound, match="has no version 7"):
        await flow_stats(db, actor=desk.engineer, slug="printer-offline", version=7)


async def test_only_engineers_see_the_numbers_and_only_their_desks(db, desk, printer):
    with pytest.raises(AccessDenied):
        await flow_stats(db, actor=desk.tech, slug="printer-offline")
    with pytest.raises(NotFound):
        await flow_stats(db, actor=desk.engineer, slug="no-such-flow")


def test_flows_stats_prints_a_table_and_json(tmp_path, capsys, monkeypatch, db_url):
    monkeypatch.delenv("RFLOW_USER", raising=False)
    monkeypatch.setenv("RFLOW_CONFIG", str(tmp_path / "none.toml"))
    owner = "owner@contoso.test"
    assert main(["--db", db_url, "init", "--account", "Contoso IT", "--email", owner]) == 0
    capsys.readouterr()
    assert main(["--db", db_url, "--user", owner, "flows", "stats", "printer-offline"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("printer-offline · Printer offline") and "v1 " in out and "node by node" in out
    assert main(["--db", db_url, "--user", owner, "flows", "stats", "printer-offline", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["versions"][0] == {
        "version": 1,
        "walks": 0,
        "resolved": 0,
        "escalated": 0,
        "abandoned": 0,
        "in_progress": 0,
        "resolution_rate": None,
        "median_walk_seconds": None,
    }
    assert all(node["reached"] == 0 for node in report["nodes"])
