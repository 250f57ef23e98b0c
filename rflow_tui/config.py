"""Settings: defaults < config file < environment < command-line flags, validated once.

The config file is TOML, in the platform's user config directory unless
``--config`` or ``RFLOW_CONFIG`` names another. A bad file stops the app with an
error naming the file, the key and what was expected: nothing half-read runs.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from rflow_tui.redact import PatternError, Privacy, compile_extra

APP_NAME = "rflow"


class ConfigError(Exception):
    """A config file or override that cannot be used, said in words a person can act on."""


def config_file_path(explicit: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """Where settings are read from: ``--config``, else ``RFLOW_CONFIG``, else the user config dir."""
    env = os.environ if environ is None else environ
    chosen = explicit or env.get("RFLOW_CONFIG")
    return Path(chosen).expanduser() if chosen else user_config_path()


def user_config_path() -> Path:
    from platformdirs import user_config_path as _p

    return _p(APP_NAME, appauthor=False) / "config.toml"


def default_database_url() -> str:
    from platformdirs import user_data_path

    return f"sqlite+aiosqlite:///{user_data_path(APP_NAME, appauthor=False) / 'rflow.sqlite3'}"


@dataclass(frozen=True)
class LLMSettings:
    generator: str = "anthropic"
    model: str = ""  # empty: the generator's own default
    api_key: str = ""  # empty: ANTHROPIC_API_KEY (generator "openai": RFLOW_OPENAI_API_KEY, or none)
    base_url: str = ""  # empty: ANTHROPIC_BASE_URL, else the SDK default ("openai": Ollama, vLLM, Azure...)
    timeout_seconds: float = 20.0  # one request
    max_retries: int = 1
    step_deadline_seconds: float = 20.0  # one AI step, every attempt, retry wait and the judge included
    prefetch: bool = True  # write the next node for both answers while the tech reads the question
    judge_prefetch: bool = True  # judge both prefetched nodes ahead (a hit is instant); false: only the one claimed
    fixture: str = ""  # empty: the shipped demo fixture
    replay_latency: bool = False
    record_to: str = ""  # a path: wrap the generator and record every exchange there
    judge: str = "auto"  # the safety judge (layer 2): auto, off, anthropic, openai, fixture, or an entry point
    judge_model: str = ""  # empty: the judge's own default
    judge_timeout_seconds: float = 10.0


@dataclass(frozen=True)
class UISettings:
    autosave_seconds: float = 1.0
    escalations_poll_seconds: float = 30.0  # the live feed's fallback poll, for poolers that break LISTEN
    escalation_bell: bool = False  # ring the terminal bell when a new escalation arrives
    escalation_bell_gap_seconds: float = 10.0  # at most one bell per this many seconds


@dataclass(frozen=True)
class PsaSettings:
    """The desk's PSA. Secrets are never here: they come from the environment (see the adapters)."""

    kind: str = ""  # empty: no PSA; "connectwise", "zendesk", or an rflow.psa_adapters entry point
    api_url: str = ""  # ConnectWise: the REST base, e.g. https://api-na.myconnectwise.net/v4_6_release/apis/3.0
    company: str = ""  # ConnectWise company id (the login's first part)
    board: str = ""  # ConnectWise service board; Zendesk group (empty: every group)
    resolved_status: str = ""  # status set when a walk resolves (empty: left as it is)
    escalated_status: str = ""  # status set when a walk escalates (empty: left as it is)
    note_visibility: str = "internal"  # "internal" or "public"
    log_time: bool = False
    timeout_seconds: float = 15.0  # one HTTP request
    max_concurrency: int = 4  # concurrent calls per endpoint
    deliver_from_app: bool = True  # the app delivers what walks owe the PSA while it runs
    pull_on_start: bool = False  # the app pulls the board's changes when it starts
    app_sync_seconds: float = 60.0  # how often the app delivers what is due (and retries)


@dataclass(frozen=True)
class AlertSettings:
    """Escalation alerts outside rflow (``rflow alerts``): apprise URLs and which escalations go.

    Read by whoever delivers them (``rflow alerts push``), like ``[psa]``: a tech's own config
    needs none of it. ``include_notes`` false: the tech's notes never leave in an alert."""

    urls: tuple[str, ...] = ()  # apprise URLs: slack://, workflows:// (Teams), mailto(s)://, json(s)://
    categories: tuple[str, ...] = ()  # reason categories that alert (empty: every one)
    priorities: tuple[str, ...] = ()  # ticket priorities that alert, as the PSA names them (empty: any)
    include_notes: bool = False  # the tech's session notes, redacted like a PSA note
    ticket_link: str = ""  # a link for a ticket without a PSA link back, "{ticket_id}" filled in
    timeout_seconds: float = 10.0  # one delivery to one URL


@dataclass(frozen=True)
class PrivacySettings:
    """What is withheld from the model and from PSA notes (``rflow_tui.redact``)."""

    redact: bool = True  # passwords, one-time codes, keys, tokens, e-mail addresses, phone numbers
    extra_patterns: tuple[str, ...] = ()  # the desk's own regular expressions (group 1, if any, is withheld)

    def policy(self) -> Privacy:
        return Privacy(enabled=self.redact, extra_patterns=self.extra_patterns)


@dataclass(frozen=True)
class Settings:
    database_url: str = ""
    user: str = ""
    llm: LLMSettings = field(default_factory=LLMSettings)
    ui: UISettings = field(default_factory=UISettings)
    psa: PsaSettings = field(default_factory=PsaSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    config_path: Path | None = None

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or default_database_url()


_SECTIONS = {
    "llm": LLMSettings,
    "ui": UISettings,
    "psa": PsaSettings,
    "privacy": PrivacySettings,
    "alerts": AlertSettings,
}

# The range every number a setting holds must fall in (inclusive): a poll of 0 s would spin,
# a 10-minute LLM timeout would freeze a walk, and TOML allows nan and inf.
BOUNDS: dict[str, tuple[float, float]] = {
    "llm.timeout_seconds": (1, 120),
    "llm.max_retries": (0, 5),
    "llm.step_deadline_seconds": (1, 120),
    "llm.judge_timeout_seconds": (1, 120),
    "ui.autosave_seconds": (0.1, 600),
    "ui.escalations_poll_seconds": (0.1, 3600),
    "ui.escalation_bell_gap_seconds": (0, 3600),
    "psa.timeout_seconds": (1, 120),
    "psa.max_concurrency": (1, 32),
    "psa.app_sync_seconds": (5, 3600),
    "alerts.timeout_seconds": (1, 120),
}


def _type_name(t: Any) -> str:
    return {str: "a string", bool: "true or false", int: "a whole number", float: "a number"}[t]


def _coerce(path: Path | str, key: str, value: Any, expected: type) -> Any:
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if expected is bool and not isinstance(value, bool):
        raise ConfigError(f"{path}: key '{key}' must be {_type_name(bool)}, got {value!r}")
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ConfigError(f"{path}: key '{key}' must be {_type_name(expected)}, got {value!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        low, high = BOUNDS.get(key, (0, math.inf))
        if not math.isfinite(value) or not low <= value <= high:
            raise ConfigError(f"{path}: key '{key}' must be {_range(low, high)}, got {value!r}")
    return value


def _strings(path: Path | str, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{path}: key '{key}' must be a list of strings, got {value!r}")
    return tuple(value)


def _range(low: float, high: float) -> str:
    return f"a number from {low:g}" if math.isinf(high) else f"from {low:g} to {high:g}"


def _build(cls: type, data: dict[str, Any], path: Path | str, prefix: str = "") -> Any:
    known = {f.name: f for f in fields(cls) if f.name != "config_path"}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in known:
            raise ConfigError(f"{path}: unknown key '{dotted}' (expected one of: {', '.join(sorted(known))})")
        if key in _SECTIONS and not prefix:
            if not isinstance(value, dict):
                raise ConfigError(f"{path}: key '{dotted}' must be a [{key}] table")
            kwargs[key] = _build(_SECTIONS[key], value, path, f"{key}.")
        elif str(known[key].type) == "tuple[str, ...]":
            kwargs[key] = _strings(path, dotted, value)
        else:
            expected = {"str": str, "bool": bool, "int": int, "float": float}[str(known[key].type)]
            kwargs[key] = _coerce(path, dotted, value, expected)
    return cls(**kwargs)


def load_settings(
    config_path: str | os.PathLike[str] | None = None,
    database_url: str | None = None,
    user: str | None = None,
    environ: Mapping[str, str] | None = None,
    allow_missing: bool = False,
) -> Settings:
    """Read the config file (if any), then apply environment and flag overrides."""
    env = os.environ if environ is None else environ
    explicit = config_path or env.get("RFLOW_CONFIG")
    path = config_file_path(config_path, env)
    data: dict[str, Any] = {}
    if path.exists():
        from rflow_tui.files import FileProblem, read_text

        try:
            data = tomllib.loads(read_text(path))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        except FileProblem as exc:
            raise ConfigError(str(exc)) from exc
    elif explicit and not allow_missing:
        raise ConfigError(f"{path}: config file not found")
    built: Settings = _build(Settings, data, path)
    settings = replace(built, config_path=path)
    _check_judge(path, settings.llm.judge)
    _check_generator(path, settings.llm.generator)
    _check_psa(path, settings.psa)
    _check_privacy(path, settings.privacy)
    _check_alerts(path, settings.alerts)
    db = database_url or env.get("RFLOW_DATABASE_URL")
    if db:
        settings = replace(settings, database_url=normalize_database_url(db))
    elif settings.database_url:
        settings = replace(settings, database_url=normalize_database_url(settings.database_url))
    if user or env.get("RFLOW_USER"):
        settings = replace(settings, user=user or env["RFLOW_USER"])
    return settings


JUDGES_WITHOUT_LOOKUP = ("auto", "off", "anthropic", "openai", "fixture")


def _check_judge(path: Path, name: str) -> None:
    """An unknown judge would leave every AI step unshown: refuse it now, naming the known ones."""
    if name in JUDGES_WITHOUT_LOOKUP:  # the registry and its entry points cost ~35 ms to load
        return
    from rflow_tui.ai.registry import setting_values

    known = setting_values()
    if name not in known:
        raise ConfigError(f"{path}: key 'llm.judge' must be one of {', '.join(known)}, got {name!r}")


GENERATORS_WITHOUT_LOOKUP = ("anthropic", "openai", "fixture")


def _check_generator(path: Path, name: str) -> None:
    """An unknown generator would only fail at the first AI build: refuse it now, naming the known ones."""
    if name in GENERATORS_WITHOUT_LOOKUP:  # the registry and its entry points cost ~35 ms to load
        return
    from rflow_tui.ai.registry import available_generators

    known = sorted(available_generators())
    if name not in known:
        raise ConfigError(f"{path}: key 'llm.generator' must be one of {', '.join(known)}, got {name!r}")


PSA_VISIBILITIES = ("internal", "public")
PSA_KINDS_WITHOUT_LOOKUP = ("", "connectwise", "zendesk")


def _check_psa(path: Path, psa: PsaSettings) -> None:
    """A PSA misnamed or half-configured would fail only at the first pull or push: refuse it now."""
    if psa.note_visibility not in PSA_VISIBILITIES:
        raise ConfigError(
            f"{path}: key 'psa.note_visibility' must be one of {', '.join(PSA_VISIBILITIES)}, "
            f"got {psa.note_visibility!r}"
        )
    if psa.api_url and not psa.api_url.startswith(("https://", "http://")):
        raise ConfigError(f"{path}: key 'psa.api_url' must be an http(s) URL, got {psa.api_url!r}")
    if psa.kind in PSA_KINDS_WITHOUT_LOOKUP:
        return
    from rflow_tui.psa.registry import available_adapters

    known = sorted(available_adapters())
    if psa.kind not in known:
        raise ConfigError(f"{path}: key 'psa.kind' must be one of {', '.join(known)}, got {psa.kind!r}")


def _check_privacy(path: Path, privacy: PrivacySettings) -> None:
    """A pattern that cannot compile would fail at the first prompt: refuse it now, saying which."""
    try:
        compile_extra(privacy.extra_patterns)
    except PatternError as exc:
        raise ConfigError(f"{path}: key 'privacy.extra_patterns': {exc}") from exc


def _check_alerts(path: Path, alerts: AlertSettings) -> None:
    """A category misspelt would silence every alert it meant to let through: refuse it now."""
    from rflow_tui.domain.enums import ReasonCategory

    known = tuple(ReasonCategory)
    for category in alerts.categories:
        if category not in known:
            raise ConfigError(
                f"{path}: key 'alerts.categories' holds {category!r}; the categories are {', '.join(known)}"
            )
    for url in alerts.urls:
        if "://" not in url:
            raise ConfigError(
                f"{path}: key 'alerts.urls' holds {safe_url(url)[:60]!r}, not an apprise URL (scheme://...)"
            )
    if alerts.ticket_link and not alerts.ticket_link.startswith(("https://", "http://")):
        raise ConfigError(f"{path}: key 'alerts.ticket_link' must be an http(s) URL, got {alerts.ticket_link!r}")


def safe_url(text: str) -> str:
    """``text`` with the password of every URL in it masked, fit for a message or a log.

    The password runs to the last ``@`` before a space, so one holding ``/`` or ``@`` is masked whole.
    """
    import re

    return re.sub(r"(://[^\s:/@]*:)\S*@", r"\1***@", text)


def normalize_database_url(value: str) -> str:
    """Accept a bare file path or a sync URL and return an async SQLAlchemy URL."""
    if "://" not in value:
        return f"sqlite+aiosqlite:///{Path(value).expanduser().resolve()}"
    scheme, rest = value.split("://", 1)
    if scheme == "sqlite":
        scheme = "sqlite+aiosqlite"
    elif scheme in ("postgres", "postgresql"):
        scheme = "postgresql+asyncpg"
    return f"{scheme}://{rest}"
