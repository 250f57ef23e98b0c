"""Settings precedence and the errors a bad config file gets."""

from __future__ import annotations

import pytest

from rflow_tui.config import ConfigError, load_settings, normalize_database_url


def write(tmp_path, text: str):
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_put_sqlite_in_the_user_data_dir(tmp_path):
    settings = load_settings(environ={"RFLOW_CONFIG": str(write(tmp_path, ""))})
    assert settings.database_url == ""
    url = settings.resolved_database_url
    assert url.startswith("sqlite+aiosqlite:///") and url.endswith("rflow/rflow.sqlite3")
    assert settings.llm.timeout_seconds == 20.0 and settings.llm.generator == "anthropic"


def test_file_then_environment_then_flags(tmp_path):
    path = write(tmp_path, 'database_url = "/data/file.db"\nuser = "file@x.test"\n[llm]\nmodel = "m"\n')
    from_file = load_settings(path, environ={})
    assert from_file.database_url.endswith("/data/file.db") and from_file.user == "file@x.test"
    assert from_file.llm.model == "m"
    env = {"RFLOW_DATABASE_URL": "sqlite:////env.db", "RFLOW_USER": "env@x.test"}
    from_env = load_settings(path, environ=env)
    assert (from_env.database_url, from_env.user) == ("sqlite+aiosqlite:////env.db", "env@x.test")
    from_flags = load_settings(path, database_url="postgresql://u@h/rflow", user="flag@x.test", environ=env)
    assert (from_flags.database_url, from_flags.user) == ("postgresql+asyncpg://u@h/rflow", "flag@x.test")


def test_rflow_config_environment_names_the_file(tmp_path):
    path = write(tmp_path, 'user = "env-file@x.test"\n')
    assert load_settings(environ={"RFLOW_CONFIG": str(path)}).user == "env-file@x.test"


@pytest.mark.parametrize(
    "text, message",
    [
        ("user = 5\n", "key 'user' must be a string, got 5"),
        ('[llm]\ntimeout_seconds = "soon"\n', "key 'llm.timeout_seconds' must be a number"),
        ("[llm]\nreplay_latency = 1\n", "key 'llm.replay_latency' must be true or false"),
        ("[llm]\nmax_retries = -1\n", "key 'llm.max_retries' must be from 0 to 5, got -1"),
        ('colour = "red"\n', "unknown key 'colour'"),
        ('[llm]\nmodle = "x"\n', "unknown key 'llm.modle'"),
        ('llm = "anthropic"\n', "key 'llm' must be a [llm] table"),
        ("user = \n", "not valid TOML"),
    ],
)
def test_bad_config_names_file_key_and_expectation(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert str(path) in str(caught.value) and message in str(caught.value)


def test_named_config_file_that_does_not_exist_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_example_config_documents_every_setting_with_its_default():
    import tomllib
    from dataclasses import fields
    from pathlib import Path

    from rflow_tui.config import LLMSettings, PrivacySettings, Settings, UISettings

    example = tomllib.loads((Path(__file__).parent.parent / "config.example.toml").read_text())
    defaults = Settings()
    for f in fields(Settings):
        # [psa] and [alerts] are shown commented out: tests/test_psa_config.py, tests/test_alerts_cli.py
        if f.name in ("llm", "ui", "psa", "privacy", "alerts", "config_path"):
            continue
        assert example[f.name] == getattr(defaults, f.name), f.name
    for section, cls in (("llm", LLMSettings), ("ui", UISettings), ("privacy", PrivacySettings)):
        assert set(example[section]) == {f.name for f in fields(cls)}
        for f in fields(cls):
            default = getattr(cls(), f.name)
            shown = tuple(example[section][f.name]) if isinstance(default, tuple) else example[section][f.name]
            assert shown == default, f"{section}.{f.name}"


def test_bare_paths_become_async_sqlite_urls(tmp_path):
    assert normalize_database_url(str(tmp_path / "a.db")) == f"sqlite+aiosqlite:///{tmp_path / 'a.db'}"
