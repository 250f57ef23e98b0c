"""The demo's first five minutes: the printed hint works as printed, an engineer can
watch the same desk, and global flags work on either side of the subcommand."""

from __future__ import annotations

import shlex
import sys
import tempfile

import pytest

from rflow_tui.cli import main
from rflow_tui.commands import app as app_commands
from rflow_tui.services import demo


@pytest.fixture
def opened(tmp_path, monkeypatch):
    """Run commands without a terminal: each app start records the settings it was given."""
    for name in ("RFLOW_CONFIG", "RFLOW_DATABASE_URL", "RFLOW_USER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # this OS user's own state folder
    script = tmp_path / "venv" / "bin" / "rflow"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    monkeypatch.setattr(sys, "argv", [str(script), "demo"])
    runs: list = []
    monkeypatch.setattr(app_commands, "_run", lambda settings, start="auto": runs.append((settings, start)) or 0)
    return runs


def hint(output: str, label: str) -> list[str]:
    line = next(line for line in output.splitlines() if label in line)
    return shlex.split(line.split(":", 1)[1])


def test_the_reopen_hint_is_printed_at_start_and_runs_as_printed_with_the_recorded_ai(opened, capsys, tmp_path):
    assert main(["demo"]) == 0
    first = opened[0][0]
    assert (first.user, first.llm.generator, first.llm.judge) == (demo.TECH_EMAIL, "fixture", "fixture")
    out = capsys.readouterr().out
    assert out.index("reopen it") < out.index("demo desk kept at")  # said before the app opens, not only after
    command = hint(out, "reopen it")
    assert command[1:] == ["demo", "--last"]
    assert command[0] == str(tmp_path / "venv" / "bin" / "rflow")  # the full path, not a bare name
    assert main(command[1:]) == 0
    again = opened[1][0]
    assert again.database_url == first.database_url
    assert (again.user, again.llm.generator, again.llm.judge) == (demo.TECH_EMAIL, "fixture", "fixture")


def test_an_engineer_watches_the_last_demo_desk(opened, capsys):
    main(["demo"])
    watch = hint(capsys.readouterr().out, "watch it")
    assert watch[1:] == ["demo", "--as", "engineer"]
    assert main(watch[1:]) == 0
    tech, engineer = opened[0][0], opened[1][0]
    assert engineer.database_url == tech.database_url
    assert (engineer.user, engineer.llm.generator) == (demo.ENGINEER_EMAIL, "fixture")
    assert opened[1][1] == "escalations"
    main(["demo", "--as", "engineer", "--new"])
    assert opened[2][0].database_url != tech.database_url
    main(["demo"])  # a tech always gets a fresh desk
    assert len({run[0].database_url for run in opened}) == 3


def test_an_engineer_with_no_demo_desk_yet_gets_a_fresh_one(opened):
    assert main(["demo", "--as", "owner"]) == 0
    assert opened[0][0].user == demo.OWNER_EMAIL


@pytest.mark.parametrize(
    "argv",
    [
        ["escalations", "--db", "/x/desk.sqlite3", "--user", "eng@contoso.test"],
        ["--db", "/x/desk.sqlite3", "escalations", "--user", "eng@contoso.test"],
        ["--user", "eng@contoso.test", "--db", "/x/desk.sqlite3", "escalations"],
    ],
)
def test_global_flags_work_before_or_after_the_subcommand(opened, argv):
    assert main(argv) == 0
    settings, start = opened[0]
    assert (settings.database_url, settings.user, start) == (
        "sqlite+aiosqlite:////x/desk.sqlite3",
        "eng@contoso.test",
        "escalations",
    )


def test_the_last_demo_desk_pointer_is_this_users_and_an_unwritable_one_never_crashes(opened, capsys, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "rflow").write_text("a file where the folder should be")  # IsADirectory / NotADirectory today
    assert main(["demo"]) == 0
    err = capsys.readouterr()
    assert "could not remember this demo desk" in err.out and "Traceback" not in err.err
    assert main(["demo", "--last"]) == 2  # nothing remembered: said in words
    assert "no last demo desk of yours" in capsys.readouterr().err


def test_a_demo_desk_that_fails_to_start_leaves_nothing_behind(opened, monkeypatch, tmp_path):
    def broken(db):
        raise RuntimeError("seeding failed")

    monkeypatch.setattr(demo, "seed_demo", broken)
    with pytest.raises(RuntimeError):
        main(["demo"])
    assert list((tmp_path / "tmp").iterdir()) == []
    assert app_commands.last_demo_desk() is None
