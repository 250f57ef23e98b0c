"""Bad input to the CLI gets a clear message and exit status 2, never a traceback, and loses nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rflow_tui.cli import main
from rflow_tui.models import Ticket
from tests.test_cli_setup import env, rows  # noqa: F401  (the fixture)


@pytest.fixture
def desk(env):  # noqa: F811
    assert main(["init", "--account", "Contoso IT", "--email", "owner@contoso.test"]) == 0
    return env


def refused(capsys, argv: list[str]) -> str:
    """Run ``rflow ARGV``; it must exit 2 with a one-line ``rflow:`` message and no traceback."""
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "rflow: " in err and "Traceback" not in err
    return err


def test_latin1_csv_is_refused_naming_the_line(desk, capsys):
    (desk / "t.csv").write_bytes("ticket_id,subject\nT-1,Printer\nT-2,Caf\xe9 printer\n".encode("latin-1"))
    err = refused(capsys, ["tickets", "import", str(desk / "t.csv")])
    assert "t.csv line 3: not UTF-8 text (byte 0xe9 at column 8)" in err and "UTF-8" in err
    assert rows(desk, Ticket) == []


@pytest.mark.parametrize("line, fields", [("T-2,Printer,extra", 3), ("T-2", 1)])
def test_ragged_csv_is_refused_naming_the_line(desk, capsys, line, fields):
    (desk / "t.csv").write_text(f"ticket_id,subject\nT-1,Mouse\n{line}\nT-3,Screen\n", encoding="utf-8")
    err = refused(capsys, ["tickets", "import", str(desk / "t.csv")])
    assert f"t.csv line 3: {fields} field(s) where the header has 2" in err
    assert rows(desk, Ticket) == []


@pytest.mark.parametrize("command", ["check", "import"])
def test_binary_flow_file_is_refused(desk, capsys, command):
    (desk / "logo.json").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    err = refused(capsys, ["flows", command, str(desk / "logo.json")])
    assert "logo.json line 1: not UTF-8 text (byte 0x89 at column 1)" in err


def test_flow_file_with_a_nul_byte_is_refused(desk, capsys):
    (desk / "f.json").write_bytes(b'{"format": "rflow.flow/1",\n "title": "a\x00b"}')
    err = refused(capsys, ["flows", "check", str(desk / "f.json")])
    assert "f.json line 2: contains a NUL byte" in err


def test_config_file_that_is_not_utf8_is_refused(tmp_path, capsys, monkeypatch):
    config = tmp_path / "config.toml"
    config.write_bytes('# caf\xe9 desk\nuser = "owner@contoso.test"\n'.encode("latin-1"))
    monkeypatch.setenv("RFLOW_CONFIG", str(config))
    err = refused(capsys, ["users", "list"])
    assert "config.toml line 1: not UTF-8 text" in err


def test_database_folder_that_cannot_be_created_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RFLOW_CONFIG", str(tmp_path / "config.toml"))
    (tmp_path / "a-file").write_text("in the way")
    where = tmp_path / "a-file" / "desks" / "desk.sqlite3"
    err = refused(capsys, ["--db", str(where), "init", "--account", "Contoso IT", "--email", "o@contoso.test"])
    assert f"cannot create the folder {where.parent} for the database" in err and "--db" in err
    assert not (tmp_path / "config.toml").exists()


def test_nul_bytes_in_a_csv_import_are_refused(desk, capsys):
    (desk / "t.csv").write_bytes(b"ticket_id,subject\nT-1,Mouse\nT-2,Key\x00board\n")
    err = refused(capsys, ["tickets", "import", str(desk / "t.csv")])
    assert "t.csv line 3: contains a NUL byte" in err
    assert rows(desk, Ticket) == []


def test_nul_bytes_in_a_json_import_are_refused_with_the_row(desk, capsys):
    (desk / "t.json").write_text(
        json.dumps([{"ticket_id": "T-1", "subject": "fine"}, {"ticket_id": "T-2", "subject": "Key\x00board"}])
    )
    err = refused(capsys, ["tickets", "import", str(desk / "t.json")])
    assert "t.json line 1: subject contains a NUL byte" in err  # json.dumps wrote one line
    assert rows(desk, Ticket) == []


@pytest.mark.parametrize("argv", [["flows", "list"], ["users", "list"], ["flows", "export", "1"]])
def test_a_reader_that_closes_the_pipe_ends_the_command_quietly(desk, argv):
    """``rflow flows list | head``: no traceback, no 'Exception ignored', exit status 2."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "rflow_tui", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )
    proc.stdout.close()  # the reader is gone before rflow writes a byte
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 2
    assert err == ""


def test_init_on_an_existing_desk_says_it_exists_and_where(desk, capsys):
    err = refused(capsys, ["init", "--account", "Fabrikam", "--email", "boss@fabrikam.test"])
    assert "a desk already exists in" in err and "1 account" in err and "--add-account" in err
    assert main(["init", "--account", "Fabrikam", "--email", "boss@fabrikam.test", "--add-account"]) == 0


@pytest.mark.parametrize(
    "argv",
    [["sessions", "export", "99999999999999999999"], ["audit", "list", "-n", "99999999999999999999"]],
)
def test_a_number_too_large_for_the_store_is_refused_by_the_parser_not_an_overflow(desk, capsys, argv):
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "is too large (at most 2,147,483,647)" in err and "Traceback" not in err


def test_safety_scan_in_a_terminal_with_no_file_says_it_reads_standard_input(tmp_path):
    from tests.pty_support import Terminal

    environ = {**os.environ, "RFLOW_CONFIG": str(tmp_path / "none.toml")}
    with Terminal(["safety", "scan"], environ) as term:
        term.read_until(b"reading JSON Lines from standard input")
        term.send(b"\x04")
        assert term.wait() == 0


@pytest.mark.parametrize(
    "value, said",
    [("NaN", "subject must be text, not a number"), ('["a"]', "subject must be text, not a JSON list")],
)
def test_json_import_with_a_wrong_type_is_refused_naming_field_and_line_not_stored_as_a_repr(desk, capsys, value, said):
    (desk / "t.json").write_text(
        f'[\n{{"ticket_id": "T-1", "subject": "ok"}},\n{{"ticket_id": "T-2", "subject": {value}}}\n]'
    )
    err = refused(capsys, ["tickets", "import", str(desk / "t.json")])
    assert f"t.json line 3: {said}" in err
    assert rows(desk, Ticket) == []


@pytest.mark.parametrize("when", ["9999-01-01T00:00:00Z", "1969-12-31T23:59:59Z"])
def test_a_created_at_no_ticket_can_have_is_refused(desk, capsys, when):
    (desk / "t.csv").write_text(f"ticket_id,subject,created_at\nT-1,Printer,{when}\n", encoding="utf-8")
    err = refused(capsys, ["tickets", "import", str(desk / "t.csv")])
    assert f"t.csv line 2: created_at '{when}' is not a date a ticket can have been opened" in err
    assert rows(desk, Ticket) == []


def test_a_csv_with_an_unterminated_quote_is_refused_not_the_rest_of_the_file_swallowed(desk, capsys):
    (desk / "t.csv").write_text('ticket_id,subject\nT-1,"unterminated\nT-2,fine\nT-3,fine\n', encoding="utf-8")
    err = refused(capsys, ["tickets", "import", str(desk / "t.csv")])
    assert "not valid CSV (unexpected end of data)" in err
    assert rows(desk, Ticket) == []


def test_a_body_too_large_is_refused_in_json_as_in_csv(desk, capsys):
    (desk / "t.json").write_text(
        json.dumps([{"ticket_id": "T-1", "subject": "Logs", "body": "x" * (10 * 1024 * 1024)}])
    )
    err = refused(capsys, ["tickets", "import", str(desk / "t.json")])
    assert "body is 10,485,760 characters; the limit is 131,072" in err
    assert rows(desk, Ticket) == []
