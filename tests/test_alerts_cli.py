"""`rflow alerts push/status/retry/test` and the `[alerts]` table, against the loopback webhook."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys

import pytest

from rflow_tui.cli import main
from rflow_tui.config import ConfigError, load_settings
from rflow_tui.db import open_store
from tests.fake_alerts import FakeWebhook, Plan
from tests.test_alerts import escalate


@pytest.fixture
def hook():
    receiver = FakeWebhook()
    yield receiver
    receiver.close()


def configure(tmp_path, monkeypatch, db_url: str, body: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(body)
    monkeypatch.setenv("RFLOW_CONFIG", str(config))
    monkeypatch.setenv("RFLOW_DATABASE_URL", db_url)


def seed(db_url: str, desk, *tickets: str) -> None:
    async def go() -> None:
        engine, open_db = await open_store(db_url)
        async with open_db() as db:
            for ticket in tickets:
                await escalate(db, desk, ticket_id=ticket)
        await engine.dispose()

    asyncio.run(go())


def test_push_sends_status_lists_and_retry_requeues_a_failed_alert(db_url, desk, hook, tmp_path, monkeypatch, capsys):
    seed(db_url, desk, "T-1", "T-2")
    configure(tmp_path, monkeypatch, db_url, f'[alerts]\nurls = ["{hook.url()}"]\ntimeout_seconds = 1\n')
    hook.plan(Plan(status=200), Plan(status=404))
    assert main(["alerts", "push", "--user", desk.tech.email]) == 1
    assert "sent 1, failed 1, waiting to retry 0" in capsys.readouterr().out
    assert main(["alerts", "status", "--user", desk.tech.email]) == 0
    out = capsys.readouterr().out
    assert re.search(r"delivered ticket T-[12] \(hardware\) reached 1 tries 1", out)  # sent two at once
    failed_line = next(line for line in out.splitlines() if "failed" in line)
    assert "error=404" in failed_line and hook.url() not in out
    failed_id = failed_line.split()[0].lstrip("#")
    assert main(["alerts", "retry", failed_id, "--user", desk.tech.email]) == 2
    assert "owners, admins and engineers" in capsys.readouterr().err
    assert main(["alerts", "retry", failed_id, "--user", desk.engineer.email]) == 0
    assert "is queued again" in capsys.readouterr().out
    assert main(["alerts", "push", "--user", desk.tech.email]) == 0
    assert "sent 1, failed 0" in capsys.readouterr().out
    assert len(hook.accepted) == 2 and main(["alerts", "push", "--user", desk.tech.email]) == 0
    assert len(hook.received) == 3  # nothing sent twice


def test_alerts_test_sends_to_each_url_and_says_which_went_out(hook, tmp_path, monkeypatch, capsys):
    refusing = FakeWebhook()
    try:
        refusing.plan(Plan(status=401))
        urls = f'"{hook.url()}", "{refusing.url()}", "nosuchservice://x"'
        configure(tmp_path, monkeypatch, "sqlite:///unused.sqlite3", f"[alerts]\nurls = [{urls}]\n")
        assert main(["alerts", "test"]) == 1
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].startswith("#1 json (") and lines[0].endswith("): sent")
        assert lines[1].startswith("#2 json (") and "not sent (refused)" in lines[1] and "error=401" in lines[1]
        assert lines[2].startswith("#3 nosuchservice (") and "apprise cannot use this" in lines[2]
        assert lines[3] == "1 of 3 went out"
        assert "test alert" in hook.accepted[0].body["title"]
    finally:
        refusing.close()


def test_push_without_urls_says_where_to_put_them(tmp_path, monkeypatch, capsys, db_url):
    configure(tmp_path, monkeypatch, db_url, "")
    assert main(["alerts", "push"]) == 2
    assert "no alert URLs: add [alerts] urls" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ('[alerts]\nchannel = "x"\n', "unknown key 'alerts.channel'"),
        ('[alerts]\ncategories = ["hardwear"]\n', "'hardwear'; the categories are needs_admin, hardware"),
        ('[alerts]\nurls = ["hooks.slack.com/x"]\n', "not an apprise URL"),
        ('[alerts]\ninclude_notes = "yes"\n', "'alerts.include_notes' must be true or false"),
        ("[alerts]\ntimeout_seconds = 0\n", "'alerts.timeout_seconds' must be from 1 to 120"),
        ('[alerts]\nticket_link = "desk/{ticket_id}"\n', "'alerts.ticket_link' must be an http(s) URL"),
    ],
)
def test_a_bad_alerts_table_stops_rflow_naming_the_key(tmp_path, body, says):
    config = tmp_path / "config.toml"
    config.write_text(body)
    with pytest.raises(ConfigError) as refused:
        load_settings(config, environ={})
    assert says in str(refused.value)


def test_the_example_config_shows_every_alerts_key_commented_with_its_default():
    import tomllib
    from dataclasses import fields
    from pathlib import Path

    from rflow_tui.config import AlertSettings

    example = (Path(__file__).parent.parent / "config.example.toml").read_text()
    start = example.index("# [alerts]")
    end = example.find("\n# [", start + 1)
    lines = example[start : end if end > 0 else None].splitlines()
    shown = tomllib.loads("\n".join(line.removeprefix("# ") for line in lines if " = " in line))
    defaults = AlertSettings()
    assert set(shown) == {f.name for f in fields(AlertSettings)}
    for f in fields(AlertSettings):
        value = shown[f.name]
        assert (tuple(value) if isinstance(value, list) else value) == getattr(defaults, f.name), f.name


def test_apprise_is_imported_only_when_an_alert_is_sent():
    code = (
        "import sys\nfrom rflow_tui.cli import build_parser\nbuild_parser()\n"
        "import rflow_tui.tui.app, rflow_tui.services.walks.endings, rflow_tui.services.alert_outbox\n"
        "print('apprise' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
