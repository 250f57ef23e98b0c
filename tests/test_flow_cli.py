"""`rflow flows ...` and `rflow sessions export` as a desk would run them."""

from __future__ import annotations

import asyncio
import copy
import json

import pytest

from rflow_tui.cli import main
from rflow_tui.db import open_store
from rflow_tui.services import library
from rflow_tui.services.library import STARTER_DIR
from rflow_tui.services.users import find_login
from rflow_tui.services.walks import endings as walk_endings
from rflow_tui.services.walks import flow_steps as flow_steps
from rflow_tui.services.walks import start as walk_start

OWNER = "owner@contoso.test"
TECH = "tech@contoso.test"


@pytest.fixture
def desk_db(tmp_path, monkeypatch, db_url):
    """A desk made through the CLI, with one ticket; returns the --db URL."""
    monkeypatch.delenv("RFLOW_USER", raising=False)
    monkeypatch.delenv("RFLOW_DATABASE_URL", raising=False)
    monkeypatch.setenv("RFLOW_CONFIG", str(tmp_path / "none.toml"))
    db = db_url
    assert main(["--db", db, "init", "--account", "Contoso IT", "--email", OWNER]) == 0
    assert main(["--db", db, "--user", OWNER, "users", "add", TECH, "--role", "l1_tech"]) == 0
    assert main(["--db", db, "--user", OWNER, "tickets", "add", "T-1", "--subject", "Printer offline"]) == 0
    return db


def run(db, *args, user=OWNER):
    return main(["--db", db, "--user", user, *args])


def write(tmp_path, name, doc):
    path = tmp_path / name
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def starter(name="printer-offline.json"):
    return json.loads((STARTER_DIR / name).read_text(encoding="utf-8"))


def custom():
    """A flow the desk writes itself (init already installed the starter library)."""
    doc = starter()
    doc.update(title="Label printer offline", slug="label-printer-offline")
    return doc


def test_check_reports_every_problem_with_its_path_and_needs_no_database(tmp_path, capsys):
    doc = starter()
    doc["nodes"][0]["yes"] = "missing-node"
    doc["nodes"][1]["id"] = doc["nodes"][0]["id"]
    bad = write(tmp_path, "bad.json", doc)
    good = write(tmp_path, "good.json", starter("slow-pc.json"))
    assert main(["flows", "check", str(good), str(bad)]) == 2
    _out, err = capsys.readouterr()
    first = doc["nodes"][0]["id"]
    assert f'{bad}: $.nodes[0].yes (node "{first}"):' in err and f'{bad}: $.nodes[1].id (node "{first}"):' in err
    assert "problem(s)" in err and str(good) not in err


def test_check_reports_unreadable_and_non_json_files(tmp_path, capsys):
    junk = tmp_path / "junk.json"
    junk.write_text("{not json", encoding="utf-8")
    assert main(["flows", "check", str(junk), str(tmp_path / "absent.json")]) == 2
    err = capsys.readouterr().err
    assert "not valid JSON" in err and "cannot be read" in err


def test_check_passes_the_shipped_library(capsys):
    files = sorted(str(p) for p in STARTER_DIR.glob("*.json"))
    assert main(["flows", "check", *files]) == 0
    assert capsys.readouterr().out.count(": ok") == len(files)


def test_import_is_all_or_nothing_across_files(desk_db, tmp_path, capsys):
    good = write(tmp_path, "good.json", custom())
    doc = starter("slow-pc.json")
    doc["nodes"][2]["no_label"] = ""
    bad = write(tmp_path, "bad.json", doc)
    assert run(desk_db, "flows", "import", str(good), str(bad)) == 2
    assert "nothing was imported" in capsys.readouterr().err
    assert run(desk_db, "flows", "list") == 0
    listing = capsys.readouterr().out
    assert "printer-offline" in listing and "label-printer-offline" not in listing


def test_import_list_export_round_trip(desk_db, tmp_path, capsys):
    source = write(tmp_path, "printer.json", custom())
    assert run(desk_db, "flows", "import", str(source)) == 0
    assert "label-printer-offline v1" in capsys.readouterr().out
    assert run(desk_db, "flows", "list") == 0
    (line,) = [row for row in capsys.readouterr().out.splitlines() if "label-printer-offline" in row]
    flow_id = int(line.split()[0])
    assert "Label printer offline" in line

    assert run(desk_db, "flows", "export", str(flow_id)) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported["nodes"] == starter()["nodes"]
    # Edit the export and import it again: a second version of the same flow.
    exported["nodes"][0]["text"] = "Is it one person who cannot print, or everyone on this printer?"
    again = write(tmp_path, "printer-v2.json", exported)
    assert run(desk_db, "flows", "import", str(again)) == 2  # never a silent replace
    assert "already has 'label-printer-offline' (v1)" in capsys.readouterr().err
    assert run(desk_db, "flows", "import", "--new-version", str(again)) == 0
    assert "label-printer-offline v2" in capsys.readouterr().out
    assert run(desk_db, "flows", "list", "--all") == 0
    old = [row for row in capsys.readouterr().out.splitlines() if "(old version)" in row]
    assert len(old) == 1 and "label-printer-offline" in old[0] and " v1 " in old[0]


def test_an_l1_tech_cannot_import(desk_db, tmp_path, capsys):
    source = write(tmp_path, "printer.json", custom())
    assert run(desk_db, "flows", "import", str(source), user=TECH) == 2
    assert "only owners, admins and engineers" in capsys.readouterr().err


def test_export_of_an_unknown_flow_is_a_clear_error(desk_db, capsys):
    assert run(desk_db, "flows", "export", "999") == 2
    assert "flow 999 does not exist" in capsys.readouterr().err


def test_sessions_export_prints_markdown_and_json(desk_db, tmp_path, capsys):
    async def walk() -> int:
        engine, factory = await open_store(desk_db)
        async with factory() as db:
            owner, tech = await find_login(db, OWNER), await find_login(db, TECH)
            flow = await library.import_flow_doc(db, actor=owner, doc=starter(), source="t")
            walk = await walk_start.start_flow_session(db, actor=tech, ticket_id="T-1", flow_id=flow.id)
            await flow_steps.answer_flow_node(db, actor=tech, session_id=walk.id, answer="no")  # Everyone
            await walk_endings.escalate(
                db, actor=tech, session_id=walk.id, reason="toner light", reason_category="hardware"
            )
        await engine.dispose()
        return walk.id

    session_id = asyncio.run(walk())
    assert run(desk_db, "sessions", "export", str(session_id), user=TECH) == 0
    markdown = capsys.readouterr().out
    assert "T-1" in markdown and "**Everyone**" in markdown and "toner light" in markdown
    out = tmp_path / "t.json"
    assert run(desk_db, "sessions", "export", str(session_id), "--format", "json", "-o", str(out)) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["steps"][0]["answer_label"] == "Everyone" and data["escalation"]["reason"] == "toner light"


def test_export_by_slug_as_json_mermaid_and_dot(desk_db, tmp_path, capsys):
    assert run(desk_db, "flows", "export", "printer-offline") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["slug"] == "printer-offline" and doc["nodes"] == starter()["nodes"]
    assert run(desk_db, "flows", "export", "printer-offline", "--format", "mermaid") == 0
    assert capsys.readouterr().out.startswith("flowchart TD")
    out = tmp_path / "flow.dot"
    assert run(desk_db, "flows", "export", "printer-offline", "--format", "dot", "-o", str(out)) == 0
    assert out.read_text(encoding="utf-8").startswith("digraph flow {")
    assert run(desk_db, "flows", "export", "no-such-flow") == 2
    assert "no flow with id or slug 'no-such-flow'" in capsys.readouterr().err


def test_import_says_how_to_add_a_version_and_list_shows_slug_and_version(desk_db, tmp_path, capsys):
    edited = copy.deepcopy(starter())
    edited["nodes"][0]["text"] = "Is it everyone on this printer?"
    path = write(tmp_path, "printer.json", edited)
    assert run(desk_db, "flows", "import", str(path)) == 2
    assert "--new-version" in capsys.readouterr().err
    assert run(desk_db, "flows", "import", str(path), "--new-version") == 0
    assert run(desk_db, "flows", "list") == 0
    (line,) = [row for row in capsys.readouterr().out.splitlines() if row.split()[1] == "printer-offline"]
    assert line.split()[2] == "v2"
