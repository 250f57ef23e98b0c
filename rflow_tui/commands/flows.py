"""Flow commands (flows import/export/list/check, sessions export). Filled in by the flows work."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    pass
