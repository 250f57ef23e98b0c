"""The [psa] table: its defaults, its errors, and the commented block config.example.toml shows."""

from __future__ import annotations

import tomllib
from dataclasses import fields
from pathlib import Path

import pytest

from rflow_tui.config import ConfigError, PsaSettings, load_settings


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_no_psa_table_means_no_psa(tmp_path):
    psa = load_settings(write(tmp_path, ""), environ={}).psa
    assert psa.kind == "" and psa.note_visibility == "internal" and psa.log_time is False


def test_a_connectwise_table_is_read(tmp_path):
    text = (
        '[psa]\nkind = "connectwise"\napi_url = "https://api-na.myconnectwise.net/v4_6_release/apis/3.0"\n'
        'company = "contoso"\nboard = "Help Desk"\nresolved_status = "Resolved"\nescalated_status = "Escalated"\n'
        "log_time = true\ntimeout_seconds = 5\n"
    )
    psa = load_settings(write(tmp_path, text), environ={}).psa
    assert (psa.kind, psa.company, psa.board) == ("connectwise", "contoso", "Help Desk")
    assert psa.resolved_status == "Resolved"
    assert psa.log_time is True and psa.timeout_seconds == 5.0


@pytest.mark.parametrize(
    "text, message",
    [
        ('[psa]\nprivate_key = "s3cret"\n', "unknown key 'psa.private_key'"),
        ('[psa]\nkind = "autotask"\n', "key 'psa.kind' must be one of connectwise, zendesk"),
        ('[psa]\nnote_visibility = "everyone"\n', "key 'psa.note_visibility' must be one of internal, public"),
        ('[psa]\napi_url = "ftp://x"\n', "key 'psa.api_url' must be an http(s) URL"),
        ("[psa]\nmax_concurrency = 0\n", "key 'psa.max_concurrency' must be from 1 to 32"),
        ('psa = "connectwise"\n', "key 'psa' must be a [psa] table"),
    ],
)
def test_bad_psa_settings_are_refused_at_start(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert str(path) in str(caught.value) and message in str(caught.value)


def test_example_shows_every_psa_key_commented_with_its_default():
    example = (Path(__file__).parent.parent / "config.example.toml").read_text()
    start = example.index("# [psa]")
    end = example.find("\n# [", start + 1)  # the next commented-out table, if any
    block = "\n".join(line.removeprefix("# ") for line in example[start:end].splitlines() if " = " in line)
    shown = tomllib.loads(block)
    assert set(shown) == {f.name for f in fields(PsaSettings)}
    defaults = PsaSettings()
    for key in ("note_visibility", "log_time", "timeout_seconds", "max_concurrency"):
        assert shown[key] == getattr(defaults, key), key
    assert "RFLOW_PSA_PRIVATE_KEY" in example[start:]
