"""Copying a transcript never claims a copy that cannot be checked: inside tmux or over
SSH the transcript also goes to a file, and the message says where."""

from __future__ import annotations

import pytest

from rflow_tui.services.walks import start as walk_start
from rflow_tui.services.walks import steps as walk_steps
from tests.tui_support import make_app, resume_walk_with_focus_on_answers, seed_tickets, wait_for


@pytest.fixture
def data_home(tmp_path, monkeypatch):
    for name in ("TMUX", "SSH_TTY", "SSH_CONNECTION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return tmp_path / "data"


async def copy_from_walk(store, db, desk, ticket_id: str):
    await seed_tickets(db, desk.tech.account_id, [(ticket_id, "Mouse [red]x[/]", "Di")])
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id=ticket_id)
    await walk_steps.update_notes(db, actor=desk.tech, session_id=walk.id, notes=["Replaced the batteries"])
    app = make_app(store, desk.tech)
    async with app.run_test(size=(120, 34)) as pilot:
        await resume_walk_with_focus_on_answers(pilot, app)
        await pilot.press("x")
        await wait_for(pilot, lambda: any("ranscript" in n.message for n in app._notifications))
        message = next(n.message for n in app._notifications if "ranscript" in n.message)
        return walk, message, app.clipboard


@pytest.mark.parametrize("variable, why", [("TMUX", "inside tmux"), ("SSH_TTY", "over SSH")])
async def test_where_the_clipboard_may_not_arrive_the_transcript_is_also_a_file(
    store, db, desk, data_home, monkeypatch, variable, why
):
    monkeypatch.setenv(variable, "/dev/pts/3")
    walk, message, clipboard = await copy_from_walk(store, db, desk, "T-880")
    path = data_home / "rflow" / "transcripts" / f"T-880-walk-{walk.id}.md"
    assert path.read_text(encoding="utf-8") == clipboard
    assert "Replaced the batteries" in clipboard
    assert str(path) in message and why in message and "copied" not in message


async def test_a_plain_local_terminal_gets_the_copy_and_no_file(store, db, desk, data_home):
    _walk, message, clipboard = await copy_from_walk(store, db, desk, "T-881")
    assert message == "Transcript copied as Markdown" and "Replaced the batteries" in clipboard
    assert not (data_home / "rflow" / "transcripts").exists()


def test_a_transcript_file_never_overwrites_another_desks_walk_of_the_same_number(tmp_path):
    from rflow_tui.tui.clipboard import save_transcript

    first = save_transcript("desk A: T-1 walk 7", "T-1", 7, folder=tmp_path)
    second = save_transcript("desk B: T-1 walk 7", "T-1", 7, folder=tmp_path)
    again = save_transcript("desk A: T-1 walk 7", "T-1", 7, folder=tmp_path)
    assert (first.name, second.name, again) == ("T-1-walk-7.md", "T-1-walk-7-2.md", first)
    assert first.read_text() == "desk A: T-1 walk 7" and second.read_text() == "desk B: T-1 walk 7"
