"""The set-up CLI a desk runs once: init, users add, tickets add / import."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from sqlmodel import select

from rflow_tui.cli import main
from rflow_tui.db import open_store
from rflow_tui.models import Flow, Ticket, User


@pytest.fixture
def env(tmp_path, monkeypatch, db_url):
    monkeypatch.setenv("RFLOW_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("RFLOW_DATABASE_URL", db_url)
    monkeypatch.delenv("RFLOW_USER", raising=False)
    return tmp_path


def rows(env, model):
    async def go():
        engine, open_db = await open_store(os.environ["RFLOW_DATABASE_URL"])
        async with open_db() as db:
            result = list(await db.exec(select(model)))
        await engine.dispose()
        return result

    return asyncio.run(go())


def test_init_creates_account_owner_and_config(env, capsys):
    assert main(["init", "--account", "Contoso IT", "--email", "owner@contoso.test"]) == 0
    assert 'user = "owner@contoso.test"' in (env / "config.toml").read_text()
    [owner] = rows(env, User)
    assert (owner.email, owner.account_role) == ("owner@contoso.test", "owner")
    flows = rows(env, Flow)
    assert len(flows) >= 12 and all(f.account_id == owner.account_id for f in flows)


def test_users_add_acts_for_the_configured_owner(env, capsys):
    main(["init", "--account", "Contoso IT", "--email", "owner@contoso.test"])
    assert main(["users", "add", "eng@contoso.test", "--role", "engineer", "--coverage"]) == 0
    eng = next(u for u in rows(env, User) if u.email == "eng@contoso.test")
    assert eng.coverage and eng.account_id is not None


def test_unknown_user_is_refused_with_how_to_fix(env, capsys):
    main(["init", "--account", "Contoso IT", "--email", "owner@contoso.test"])
    assert main(["--user", "ghost@contoso.test", "tickets", "add", "T-1", "--subject", "x"]) == 2
    assert (
        "no user ghost@contoso.test; an owner or admin adds them with `rflow --user THEIR_EMAIL users add"
        in capsys.readouterr().err
    )


def test_l1_tech_cannot_add_users(env, capsys):
    main(["init", "--account", "Contoso IT", "--email", "owner@contoso.test"])
    main(["users", "add", "tech@contoso.test"])
    assert main(["--user", "tech@contoso.test", "users", "add", "x@contoso.test"]) == 2
    assert "only owners and admins may add users" in capsys.readouterr().err


def test_tickets_import_csv_and_json(env, capsys):
    main(["init", "--account", "Contoso IT", "--email", "owner@contoso.test"])
    (env / "t.csv").write_text("ticket_id,subject,requester,category\nT-1,Printer offline,Bob,printing\n")
    (env / "t.json").write_text(
        json.dumps([{"ticket_id": "CW-9", "subject": "VPN", "ticket_kind": "psa", "psa_system": "connectwise"}])
    )
    assert main(["tickets", "import", str(env / "t.csv")]) == 0
    assert main(["tickets", "import", str(env / "t.json")]) == 0
    got = {t.ticket_id: t for t in rows(env, Ticket)}
    assert got["T-1"].requester == "Bob" and got["CW-9"].ticket_kind == "psa"


def test_import_with_bad_rows_reports_each_and_imports_nothing(env, capsys):
    main(["init", "--account", "Contoso IT", "--email", "owner@contoso.test"])
    main(["tickets", "add", "T-1", "--subject", "exists"])
    capsys.readouterr()
    (env / "t.csv").write_text("ticket_id,subject\nT-2,fine\n,no id\nT-3,\nT-1,dup of stored\nT-2,dup in file\n")
    assert main(["tickets", "import", str(env / "t.csv")]) == 2
    err = capsys.readouterr().err
    # the line in the file (the header is line 1), so an editor jumps straight to it
    assert "t.csv line 3: ticket_id is required" in err
    assert "t.csv line 4: subject is required" in err
    assert "t.csv line 6: ticket_id T-2 appears twice" in err
    assert "ticket T-1 already exists" in err
    assert "nothing was imported" in err
    assert [t.ticket_id for t in rows(env, Ticket)] == ["T-1"]


def test_an_unknown_column_lists_the_allowed_ones(env, capsys):
    main(["init", "--account", "Contoso IT", "--email", "owner@contoso.test"])
    (env / "t.csv").write_text("ticket_id,subject,priority\nT-1,fine,high\n")
    assert main(["tickets", "import", str(env / "t.csv")]) == 2
    err = capsys.readouterr().err
    assert (
        "line 2: unknown column(s) priority (allowed: ticket_id, subject, body, requester, category, "
        "ticket_kind, psa_system, status, created_at)" in err
    )


def test_json_messages_name_the_line_each_object_starts_on(env, capsys):
    main(["init", "--account", "Contoso IT", "--email", "owner@contoso.test"])
    (env / "t.json").write_text(
        '[\n  {"ticket_id": "T-1", "subject": "fine"},\n\n  {"ticket_id": "T-2",\n   "subject": ""}\n]\n'
    )
    assert main(["tickets", "import", str(env / "t.json")]) == 2
    assert "t.json line 4: subject is required" in capsys.readouterr().err


def test_created_at_keeps_an_imported_backlogs_ages(env, capsys):
    main(["init", "--account", "Contoso IT", "--email", "owner@contoso.test"])
    (env / "t.csv").write_text(
        "ticket_id,subject,created_at\nT-1,old,2026-11-20T08:00:00Z\nT-2,naive,2026-11-21 10:30\nT-3,now,\n"
    )
    assert main(["tickets", "import", str(env / "t.csv")]) == 0
    got = {t.ticket_id: t.created_at.replace(tzinfo=None) for t in rows(env, Ticket)}
    assert got["T-1"].isoformat() == "2026-11-20T08:00:00" and got["T-2"].isoformat() == "2026-11-21T10:30:00"
    assert got["T-3"].year >= 2026  # none given: now
    (env / "bad.csv").write_text("ticket_id,subject,created_at\nT-9,x,last tuesday\n")
    assert main(["tickets", "import", str(env / "bad.csv")]) == 2
    assert "bad.csv line 2: created_at must be an ISO 8601 date or time" in capsys.readouterr().err


def test_skip_existing_imports_an_overlapping_export_and_the_rest_stays_all_or_nothing(env, capsys):
    main(["init", "--account", "Contoso IT", "--email", "owner@contoso.test"])
    (env / "monday.csv").write_text("ticket_id,subject\nT-1,first\nT-2,second\n")
    (env / "tuesday.csv").write_text("ticket_id,subject\nT-2,second again\nT-3,third\n")
    main(["tickets", "import", str(env / "monday.csv")])
    capsys.readouterr()
    assert main(["tickets", "import", str(env / "tuesday.csv")]) == 2  # without the flag: refused, nothing in
    assert "ticket T-2 already exists" in capsys.readouterr().err
    assert main(["tickets", "import", str(env / "tuesday.csv"), "--skip-existing"]) == 0
    out = capsys.readouterr().out
    assert "imported 1 ticket(s)" in out and "skipped 1 already on the desk" in out
    got = {t.ticket_id: t.subject for t in rows(env, Ticket)}
    assert got == {"T-1": "first", "T-2": "second", "T-3": "third"}
    (env / "wednesday.csv").write_text("ticket_id,subject\nT-3,again\nT-4,\n")
    assert main(["tickets", "import", str(env / "wednesday.csv"), "--skip-existing"]) == 2
    assert "T-4" not in {t.ticket_id for t in rows(env, Ticket)}


def test_import_help_documents_both_formats(capsys):
    with pytest.raises(SystemExit):
        main(["tickets", "import", "--help"])
    out = capsys.readouterr().out
    for column in ("ticket_id", "subject", "body", "requester", "category", "ticket_kind", "psa_system", "created_at"):
        assert column in out
    assert "CSV:" in out and "JSON:" in out and "--skip-existing" in out


def test_import_of_malformed_json_says_so(env, capsys):
    main(["init", "--account", "Contoso IT", "--email", "owner@contoso.test"])
    (env / "t.json").write_text("{not json")
    assert main(["tickets", "import", str(env / "t.json")]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_help_does_not_import_heavy_libraries():
    import subprocess
    import sys

    code = (
        "import sys\nfrom rflow_tui.cli import build_parser\nbuild_parser()\n"
        "heavy = [m for m in ('textual', 'anthropic', 'alembic', 'sqlalchemy') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def test_coverage_switch_and_deactivation_take_effect(env, capsys):
    main(["init", "--account", "Contoso IT", "--email", "owner@contoso.test"])
    main(["users", "add", "eng@contoso.test", "--role", "engineer"])
    main(["users", "add", "tech@contoso.test"])
    assert main(["users", "set-coverage", "eng@contoso.test", "on"]) == 0
    assert main(["users", "deactivate", "tech@contoso.test"]) == 0
    users = {u.email: u for u in rows(env, User)}
    assert users["eng@contoso.test"].coverage and not users["tech@contoso.test"].is_active
    capsys.readouterr()
    assert main(["--user", "tech@contoso.test", "users", "list"]) == 2
    assert "tech@contoso.test is deactivated" in capsys.readouterr().err
    assert main(["users", "set-coverage", "tech@contoso.test", "on"]) == 2
    assert "only engineers carry the L1 coverage flag" in capsys.readouterr().err


def test_tickets_reopen_opens_a_closed_ticket_and_refuses_an_open_one(env, capsys):
    main(["init", "--account", "Contoso IT", "--email", "owner@contoso.test"])
    main(["tickets", "add", "T-1", "--subject", "Printer offline"])
    capsys.readouterr()
    assert main(["tickets", "reopen", "T-1"]) == 2
    assert "ticket T-1 is already open" in capsys.readouterr().err

    async def close():
        engine, open_db = await open_store(os.environ["RFLOW_DATABASE_URL"])
        async with open_db() as db:
            ticket = (await db.exec(select(Ticket))).one()
            ticket.status = "escalated"
            db.add(ticket)
            await db.commit()
        await engine.dispose()

    asyncio.run(close())
    assert main(["tickets", "reopen", "T-1"]) == 0
    assert "reopened ticket T-1" in capsys.readouterr().out
    assert [t.status for t in rows(env, Ticket)] == ["open"]
