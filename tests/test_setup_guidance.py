"""Set-up that does not send people in circles: passwords never printed, ``init --db``
remembered, messages that point somewhere that works, and settings checked when they load."""

from __future__ import annotations

import math
import os
import stat
import subprocess
import sys
from dataclasses import fields

import pytest

from rflow_tui.cli import main
from rflow_tui.config import (
    BOUNDS,
    AlertSettings,
    ConfigError,
    LLMSettings,
    PsaSettings,
    UISettings,
    load_settings,
    safe_url,
)

SECRET = "s3/cr@t-pw"


@pytest.fixture
def blank(tmp_path, monkeypatch):
    """A person with no config, no database and no RFLOW_* variables (their user dirs under tmp_path)."""
    for name in ("RFLOW_CONFIG", "RFLOW_DATABASE_URL", "RFLOW_USER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))
    return tmp_path


def config_file(blank):
    return blank / "config-home" / "rflow" / "config.toml"


# --- the database password ------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://rflow:{SECRET}@127.0.0.1:1/rflow",  # nothing listens there
        f"postgresql://rflow:{SECRET}@127.0.0.1:notaport/rflow",  # not a URL SQLAlchemy can use
        f"mysql://rflow:{SECRET}@127.0.0.1/rflow",  # a driver that is not installed
    ],
)
def test_the_database_password_is_never_printed_in_errors(blank, capsys, url):
    assert main(["--db", url, "--user", "o@contoso.test", "users", "list"]) == 2
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err and "s3/cr" not in out.err
    assert "rflow: " in out.err and "rflow:***@127.0.0.1" in out.err


def test_safe_url_masks_every_password_in_a_message():
    message = f"cannot open postgresql+asyncpg://u:{SECRET}@h:5432/db (user x@y.test) nor postgres://v:pw@h2/db"
    assert (
        safe_url(message)
        == "cannot open postgresql+asyncpg://u:***@h:5432/db (user x@y.test) nor postgres://v:***@h2/db"
    )
    assert safe_url("sqlite+aiosqlite:////home/a:b@c/desk.sqlite3") == "sqlite+aiosqlite:////home/a:b@c/desk.sqlite3"


@pytest.mark.postgres_only
def test_init_on_postgres_prints_no_password(blank, capsys, db_url):
    from sqlalchemy.engine import make_url

    password = make_url(db_url).password
    assert password and main(["--db", db_url, "init", "--account", "Contoso IT", "--email", "o@contoso.test"]) == 0
    out = capsys.readouterr()
    admin_lines = [line for line in out.out.splitlines() if "shown once" not in line and "puts this in" not in line]
    assert password not in "\n".join(admin_lines) + out.err
    assert "database: postgresql+asyncpg://" in out.out and ":***@" in out.out


# --- init writes what it was told -------------------------------------------------------


def test_init_with_db_writes_that_database_into_the_config_it_creates(blank, capsys):
    desk = blank / "desks" / "contoso.sqlite3"
    assert main(["--db", str(desk), "init", "--account", "Contoso IT", "--email", "o@contoso.test"]) == 0
    config = config_file(blank).read_text()
    assert f'database_url = "sqlite+aiosqlite:///{desk}"' in config and 'user = "o@contoso.test"' in config
    assert stat.S_IMODE(os.stat(config_file(blank)).st_mode) == 0o600
    capsys.readouterr()
    assert main(["users", "list"]) == 0  # no --db: the config finds the same desk
    assert "o@contoso.test" in capsys.readouterr().out


def test_init_with_an_existing_config_leaves_it_and_says_what_to_set(blank, capsys):
    config_file(blank).parent.mkdir(parents=True)
    config_file(blank).write_text('user = "someone@else.test"\n')
    desk = blank / "contoso.sqlite3"
    assert main(["--db", str(desk), "init", "--account", "Contoso IT", "--email", "o@contoso.test"]) == 0
    assert config_file(blank).read_text() == 'user = "someone@else.test"\n'
    out = capsys.readouterr().out
    assert "exists and was left as it is" in out and f'database_url = "sqlite+aiosqlite:///{desk}"' in out


# --- messages that point somewhere that works -----------------------------------------------


def test_with_no_user_configured_the_message_points_to_init_or_demo(blank, capsys):
    assert main(["--db", str(blank / "new.sqlite3"), "users", "list"]) == 2
    err = capsys.readouterr().err
    assert "rflow init" in err and "rflow demo" in err and "users add" not in err


def test_naming_a_user_on_an_empty_database_points_to_init(blank, capsys):
    assert main(["--db", str(blank / "new.sqlite3"), "--user", "me@contoso.test", "users", "list"]) == 2
    err = capsys.readouterr().err
    assert "no user me@contoso.test: this database has no desk yet" in err and "rflow init" in err


def test_config_path_honours_rflow_config(blank, capsys, monkeypatch):
    monkeypatch.setenv("RFLOW_CONFIG", str(blank / "team" / "rflow.toml"))
    assert main(["config-path"]) == 0
    assert capsys.readouterr().out.strip() == str(blank / "team" / "rflow.toml")
    assert main(["--config", str(blank / "mine.toml"), "config-path"]) == 0
    assert capsys.readouterr().out.strip() == str(blank / "mine.toml")


# --- numbers in range, generators that exist ---------------------------------------------------


SECTIONS = {"llm": LLMSettings, "ui": UISettings, "psa": PsaSettings, "alerts": AlertSettings}


def is_whole_number(key: str) -> bool:
    section, name = key.split(".")
    return next(str(f.type) for f in fields(SECTIONS[section]) if f.name == name) == "int"


def numeric_keys() -> list[str]:
    return [
        f"{section}.{f.name}"
        for section, cls in SECTIONS.items()
        for f in fields(cls)
        if str(f.type) in ("int", "float")
    ]


def test_every_numeric_setting_is_bounded_and_its_default_is_in_range():
    assert sorted(BOUNDS) == sorted(numeric_keys())
    for key, (low, high) in BOUNDS.items():
        section, name = key.split(".")
        default = getattr(SECTIONS[section](), name)
        assert low <= default <= high, key


def config_with(tmp_path, key: str, value: str):
    section, name = key.split(".")
    path = tmp_path / "config.toml"
    path.write_text(f"[{section}]\n{name} = {value}\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("key", sorted(BOUNDS))
@pytest.mark.parametrize("where", ["below", "above", "nan", "inf", "-inf"])
def test_a_number_out_of_range_is_refused_naming_the_key_and_range(tmp_path, key, where):
    low, high = BOUNDS[key]
    is_int = is_whole_number(key)
    value = {"below": low - 1 if is_int else low / 2 if low else -0.5, "above": high + 1 if is_int else high * 2}.get(
        where
    )
    path = config_with(tmp_path, key, str(where if value is None else value))
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    # TOML has no nan or inf integers: for a whole-number key they are refused as the wrong type.
    expected = f"key '{key}' must be a whole number" if is_int and value is None else f"key '{key}' must be from"
    assert expected in str(caught.value) and str(path) in str(caught.value)
    if value is not None or not is_int:
        assert f"must be from {low:g} to {high:g}" in str(caught.value)


@pytest.mark.parametrize("key", sorted(BOUNDS))
def test_the_ends_of_each_range_are_accepted(tmp_path, key):
    section, name = key.split(".")
    for end in BOUNDS[key]:
        settings = load_settings(config_with(tmp_path, key, repr(end)), environ={})
        assert getattr(getattr(settings, section), name) == end and math.isfinite(end)


def test_an_unknown_generator_is_refused_when_the_config_loads(tmp_path):
    path = config_with(tmp_path, "llm.generator", '"antropic"')
    with pytest.raises(ConfigError, match=r"key 'llm.generator' must be one of anthropic, fixture.*got 'antropic'"):
        load_settings(path, environ={})


def test_checking_a_built_in_generator_imports_nothing_from_the_ai_package(tmp_path):
    """Start-up stays fast: the registry (entry points) is read only for a name that is not built in."""
    path = config_with(tmp_path, "llm.generator", '"fixture"')
    code = (
        "import sys; from rflow_tui.config import load_settings; "
        f"load_settings({str(path)!r}, environ={{}}); "
        "print(sorted(m for m in sys.modules if m.startswith('rflow_tui.ai')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
