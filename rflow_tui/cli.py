"""Entry point: ``rflow`` opens the app; subcommands set up a desk once.

Subcommands live in small modules (``commands/``), each with ``register(subparsers)``,
sharing ``commands/common.py``; the imports run one way, cli -> commands. Heavy
imports happen inside the handlers, so ``rflow --help`` stays instant.
"""

from __future__ import annotations

import argparse
import sys

from rflow_tui import __version__
from rflow_tui.commands.common import CommandError
from rflow_tui.commands.output import say

COMMAND_MODULES = (
    "rflow_tui.commands.setup",
    "rflow_tui.commands.flows",
    "rflow_tui.commands.app",
    "rflow_tui.commands.safety",
    "rflow_tui.commands.audit",
    "rflow_tui.commands.psa",
    "rflow_tui.commands.alerts",
)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="rflow",
        description="Walk troubleshooting trees against help-desk tickets. With no command, opens the app.",
    )
    parser.add_argument("--version", action="version", version=f"rflow {__version__}")
    _add_global_flags(parser, default=None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    _global_flags_on_subcommands(parser)
    return parser


GLOBAL_FLAGS = (
    ("--config", "FILE", "config file (default: the user config dir; env RFLOW_CONFIG)"),
    ("--db", "URL", "database URL or SQLite path (env RFLOW_DATABASE_URL)"),
    ("--user", "EMAIL", "act as this user (env RFLOW_USER)"),
)


def _add_global_flags(parser: argparse.ArgumentParser, default: object) -> None:
    for flag, metavar, help_text in GLOBAL_FLAGS:
        parser.add_argument(flag, metavar=metavar, help=help_text, default=default)


def _global_flags_on_subcommands(parser: argparse.ArgumentParser) -> None:
    """``rflow escalations --db X`` works like ``rflow --db X escalations``.

    On subcommands the flags default to SUPPRESS, so a flag given before the
    subcommand is not overwritten by the subcommand's unset copy.
    """
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                _add_global_flags(subparser, default=argparse.SUPPRESS)
                _global_flags_on_subcommands(subparser)


def main(argv: list[str] | None = None) -> int:
    from rflow_tui.config import ConfigError
    from rflow_tui.services.errors import ServiceError  # covers db.DatabaseError; importing db here costs ~250 ms

    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        from rflow_tui.commands.app import run_app

        handler = run_app
    try:
        code = handler(args) or 0
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except (CommandError, ConfigError, ServiceError) as exc:
        say(f"rflow: {exc}", err=True)
        return 2
    except BrokenPipeError:
        return _reader_went_away()
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a store failure no command put in words: still one line and exit 2
        error = _store_failure(exc)
        if error is None:
            raise
        say(f"rflow: {error}", err=True)
        return 2


STORE_MODULES = ("sqlalchemy", "asyncpg", "sqlite3", "aiosqlite")


def _store_failure(exc: Exception) -> Exception | None:
    """The store's failure in words, for an exception the store's drivers raised (only those:
    a missing import file is not a database that cannot be reached)."""
    if type(exc).__module__.split(".")[0] not in STORE_MODULES:
        return None
    from rflow_tui.db import store_error

    return store_error(exc)


def _reader_went_away() -> int:
    """``rflow flows list | head``: the reader closed the pipe. Exit quietly (status 2), the
    Python-docs way: point stdout at devnull so the interpreter's final flush cannot fail too."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
