"""Commands that open the terminal app: the default run, ``demo``, ``escalations``."""

from __future__ import annotations

import argparse

from rflow_tui.cli import CommandError


def register(sub: argparse._SubParsersAction) -> None:
    pass


def run_app(args) -> int:
    raise CommandError("the terminal app is not built yet; see `rflow --help` for the set-up commands")
