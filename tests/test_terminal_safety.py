"""Nothing hostile in stored data reaches a technician's terminal.

A corpus of terminal attacks (clipboard write, window title, hyperlink, screen
clear, DCS, 8-bit C1 controls, a bidi override) is written straight into the
tables, as data stored before the sanitiser existed would be, then the real
``rflow`` runs on a pseudo-terminal through every screen and every CLI command
that prints stored text. The app's own escape sequences are fine; none of the
payloads' may arrive.
"""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from sqlalchemy import update

from rflow_tui.db import open_store
from rflow_tui.models import Flow, FlowProposal, L1WalkSession, Ticket, User
from rflow_tui.services.walks import endings as walk_endings
from rflow_tui.services.walks import start as walk_start
from tests.conftest import make_desk
from tests.pty_support import Terminal, run_on_pty
from tests.tui_support import SMALL_FLOW
from tests.walk_paths import put_path

OSC52_CLIPBOARD = "\x1b]52;c;cm0gLXJmIH4v\x07"  # "rm -rf ~/" onto the clipboard
OSC_TITLE = "\x1b]0;pwned-title\x07\x1b]2;pwned-title\x1b\\"
OSC8_LINK = "\x1b]8;;https://evil.test/\x1b\\click me\x1b]8;;\x1b\\"
CSI_CLEAR = "\x1b[2J\x1b[3J\x1b[H"
DCS = "\x1bP1$qm\x1b\\"
C1 = "\x9b31m\x9d0;c1-title\x9c"
BIDI = "\u202egnp.exe"
MARKUP = "[@click=app.quit]q[/] [red]r[/]"
HOSTILE = f"Evil{OSC52_CLIPBOARD}{OSC_TITLE}{OSC8_LINK}{CSI_CLEAR}{DCS}{C1}{BIDI} Ye\u200bs {MARKUP}"
HOSTILE_LINES = f"line one {HOSTILE}\nline two {HOSTILE}"

# What would mean a payload got through: each is distinctive of one attack above.
FORBIDDEN = {
    "OSC 52 clipboard": "\x1b]52;",
    "OSC 0 title": "\x1b]0;",
    "OSC 2 title": "\x1b]2;",
    "OSC 8 hyperlink": "\x1b]8;",
    "clear scrollback": "\x1b[3J",
    "DCS": "\x1bP1$q",
    "C1 CSI": "\x9b",
    "C1 OSC": "\x9d",
    "bidi override": "\u202e",
}


def leaks(output: bytes) -> dict[str, str]:
    text = output.decode("utf-8", errors="replace")
    return {name: seq for name, seq in FORBIDDEN.items() if seq in text}


def test_the_apps_own_output_carries_none_of_the_forbidden_sequences(tmp_path):
    """The check means something: a clean desk's screens pass it, so a hit is the data's."""
    url = seed(tmp_path, hostile=False)
    env = desk_env(tmp_path)
    with Terminal(["--db", url, "--user", "eng@contoso.test"], env) as term:
        term.read_until(b"Reason:")
        term.settle()
        term.send(b"\x1bOS")  # F4: proposals
        term.read_until(b"pending")
        term.send(b"\x11")
        assert term.wait() == 0
        assert leaks(term.output) == {}


def seed(tmp_path, *, hostile: bool = True) -> str:
    """A desk whose names, tickets, notes, reasons, flow and proposal carry the corpus."""
    path = tmp_path / "desk.sqlite3"
    url = f"sqlite+aiosqlite:///{path}"
    evil = HOSTILE if hostile else "plain"
    evil_lines = HOSTILE_LINES if hostile else "plain\ntext"

    async def go() -> None:
        engine, sessions = await open_store(url)
        async with sessions() as db:
            desk = await make_desk(db)
            walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")
            escalated = await walk_endings.escalate_without_walk(
                db, actor=desk.tech, ticket_id="T-2", reason="placeholder", reason_category="other"
            )
            # Straight into the tables, past the services: data from before the sanitiser.
            await db.exec(update(User).values(name=evil))
            await db.exec(update(Ticket).values(subject=evil, requester=evil, body=evil_lines))
            db.add(
                Ticket(
                    account_id=desk.tech.account_id,
                    ticket_id=f"T-9{evil[:40]}",
                    subject=f"Outlook {evil}",
                    requester=evil,
                )
            )
            step = {
                "node_type": "question",
                "id": "q1",
                "text": evil_lines,
                "answer": "yes",
                "answer_label": evil,
                "yes_label": evil,
                "no_label": "No",
                "l1_note": evil_lines,
            }
            for row in (walk.id, escalated.id):
                await db.exec(
                    update(L1WalkSession)
                    .where(L1WalkSession.id == row)
                    .values(
                        walk_notes=[evil_lines],
                        problem_text=evil_lines,
                        escalation_reason=evil_lines if row == escalated.id else None,
                    )
                )
                await put_path(db, row, [step], commit=False)
            doc = json.loads(json.dumps(SMALL_FLOW))
            doc["nodes"][0]["text"] = evil_lines
            db.add(
                Flow(
                    account_id=desk.tech.account_id,
                    slug="evil",
                    version=1,
                    title=f"Outlook {evil}",
                    category="email",
                    match_keywords=["outlook"],
                    flow_data=doc,
                    created_by_user_id=desk.engineer.id,
                )
            )
            db.add(
                FlowProposal(
                    account_id=desk.tech.account_id,
                    title=f"Proposal {evil}",
                    category="email",
                    proposed_flow_data={"tree_structure": doc, "match_keywords": []},
                    ticket_id="T-1",
                )
            )
            await db.commit()
        await engine.dispose()

    asyncio.run(go())
    return str(path)


def desk_env(tmp_path) -> dict[str, str]:
    config = tmp_path / "config.toml"
    config.write_text("[ui]\nescalations_poll_seconds = 0.5\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RFLOW_")}
    return {**env, "RFLOW_CONFIG": str(config)}


@pytest.fixture
def hostile_desk(tmp_path):
    return seed(tmp_path), desk_env(tmp_path)


def test_tech_screens_show_hostile_data_without_its_escapes(hostile_desk):
    """Header (the name), resume list, walk (notes editor, transcript), picker, start dialog,
    the tech's finished walks (F3) and the command palette's ticket search."""
    db, env = hostile_desk
    with Terminal(["--db", db, "--user", "tech@contoso.test"], env) as term:
        term.read_until(b"Pick up where you left off")
        term.read_until(" · Ad-hoc · ".encode())  # the list is shown, so Enter acts on it
        term.send(b"\r")  # resume the ad-hoc walk: notes editor and transcript
        term.read_until(b"Ad-hoc walk")
        term.settle()
        for _ in range(2):  # out of the notes editor, then back to the tickets
            term.send(b"\x1b")
            term.settle()
        term.read_until(b"sorted by")
        term.send(b"\x1b[B\x1b[B")  # past the walk in progress, to T-9 (its subject names Outlook)
        term.settle()
        term.send(b"\r")  # start a walk: the flows offered for it, the problem text
        term.read_until(b"Start a walk")
        term.settle()
        term.send(b"\x1b")  # cancel the start dialog
        term.settle()
        term.send(b"\x1bOR")  # F3: my finished walks (the escalated one carries the corpus)
        term.read_until(b"escalated")
        term.settle()
        term.send(b"\x10")  # ctrl+p: the palette searches tickets by subject
        term.settle()
        term.send(b"Evil")
        term.read_until(b"Start a walk on this ticket")
        term.settle()
        term.send(b"\x1b")
        term.settle()
        term.send(b"\x11")  # ctrl+q
        term.settle()
        assert leaks(term.output) == {}
        assert b"Evil" in term.output  # the data was on screen, only its escapes were not


def test_engineer_screens_show_hostile_data_without_its_escapes(hostile_desk):
    """Escalations (list, detail with reason, notes, transcript), then proposals."""
    db, env = hostile_desk
    with Terminal(["--db", db, "--user", "eng@contoso.test"], env) as term:
        term.read_until(b"Reason:")
        term.settle(1.5)  # a few polls
        term.send(b"\x1bOS")  # F4
        term.read_until(b"pending")
        term.send(b"\x1b[B")  # select the proposal: its detail pane
        term.settle()
        term.send(b"\x11")
        term.settle()
        assert leaks(term.output) == {}
        assert b"Evil" in term.output


def cli(db: str, *argv: str) -> list[str]:
    return ["--db", db, "--user", "owner@contoso.test", *argv]


@pytest.mark.parametrize(
    "argv",
    [
        ["users", "list"],
        ["flows", "list"],
        ["flows", "export", "1"],
        ["sessions", "export", "1"],
        ["sessions", "export", "2", "--format", "json"],
        ["users", "deactivate", f"x{HOSTILE}@contoso.test"],  # the refusal echoes the email
        ["users", "add", f"x{HOSTILE}@contoso.test"],  # the confirmation echoes the email
        ["--user", f"ghost{HOSTILE}@contoso.test", "users", "list"],  # the refusal echoes the email
    ],
    ids=[
        "users-list",
        "flows-list",
        "flows-export",
        "sessions-export-md",
        "sessions-export-json",
        "error-echo-email",
        "users-add-echo",
        "unknown-user-echo",
    ],
)
def test_cli_prints_hostile_data_without_its_escapes(hostile_desk, argv):
    db, env = hostile_desk
    status, output = run_on_pty(cli(db, *argv), env)
    assert leaks(output) == {}, output[-1500:]
    assert b"Traceback" not in output
    assert b"Evil" in output or status == 2


def test_import_problems_echo_the_file_without_its_escapes(hostile_desk, tmp_path):
    db, env = hostile_desk
    bad = f"T-{HOSTILE[:60]}"
    (tmp_path / "t.csv").write_text(f"ticket_id,subject\n{bad},a\n{bad},b\n", encoding="utf-8")
    (tmp_path / "u.csv").write_text(f"ticket_id,subject,{HOSTILE}\nT-77,a,b\n", encoding="utf-8")
    for name in ("t.csv", "u.csv"):
        status, output = run_on_pty(cli(db, "tickets", "import", str(tmp_path / name)), env)
        assert status == 2 and b"nothing was imported" in output
        assert leaks(output) == {}, output[-1500:]


def test_flows_export_keeps_the_stored_text_losslessly_as_json_escapes(hostile_desk, tmp_path):
    """An export may be re-imported: the escapes become \\u sequences, not lost, not raw."""
    db, env = hostile_desk
    status, output = run_on_pty(cli(db, "flows", "export", "1", "-o", str(tmp_path / "f.json")), env)
    assert status == 0 and leaks(output) == {}
    raw = (tmp_path / "f.json").read_text(encoding="utf-8")
    assert leaks(raw.encode()) == {} and json.loads(raw)["title"] == f"Outlook {HOSTILE}"


async def test_the_way_in_cleans_what_the_services_store(db, desk):
    """Stored through the services, the same corpus arrives without escapes or bidi characters."""
    from rflow_tui.services.tickets import add_ticket
    from rflow_tui.services.users import add_user

    user = await add_user(db, actor=desk.owner, email=f"new{HOSTILE}@contoso.test", name=HOSTILE)
    ticket = await add_ticket(
        db, actor=desk.owner, ticket_id="T-50", subject=HOSTILE, body=HOSTILE_LINES, requester=HOSTILE
    )
    for value in (user.email, user.name, ticket.subject, ticket.requester, ticket.body):
        assert leaks(value.encode()) == {} and "\x1b" not in value and "Evil" in value
    assert "\u200b" not in user.name and "\n" in ticket.body


async def test_a_paste_carrying_escapes_reaches_the_notes_editor_clean(store, db, desk):
    from textual import events

    from tests.test_tui_quit import open_resumed_walk
    from tests.tui_support import make_app

    await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-1")
    app = make_app(store, desk.tech)
    async with app.run_test(size=(130, 40)) as pilot:
        await open_resumed_walk(pilot, app)
        app.screen.query_one("#session-notes").focus()
        app.post_message(events.Paste(HOSTILE_LINES))
        await pilot.pause(0.2)
        typed = app.screen.query_one("#session-notes").text
        assert "Evil" in typed and leaks(typed.encode()) == {} and "\x1b" not in typed


async def test_toasts_and_titles_show_stored_text_without_escapes(store, db, desk):
    from tests.tui_support import make_app

    app = make_app(store, desk.tech)
    async with app.run_test(size=(130, 40)) as pilot:
        app.notify(f"ticket {HOSTILE}", title=HOSTILE)
        app.sub_title = HOSTILE
        await pilot.pause(0.1)
        toast = app._notifications
        [note] = list(toast)
        title = app.format_title(app.title, app.sub_title).plain
        for text in (note.message, note.title, title):
            assert "Evil" in text and leaks(text.encode()) == {} and "\x1b" not in text
