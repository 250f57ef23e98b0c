"""Every line the CLI prints goes through here, so stored text (names, ticket ids,
flow titles, error messages echoing them) never reaches the terminal with its
escape sequences, control or bidi characters."""

from __future__ import annotations

import sys

from rflow_tui.text import clean


def say(*parts: object, err: bool = False) -> None:
    """``print`` for the CLI: one guarded line on standard output (or error)."""
    print(clean(" ".join(str(part) for part in parts)), file=sys.stderr if err else sys.stdout)


def emit(text: str) -> None:
    """A whole document (an export) on standard output, guarded, ending in a newline."""
    text = clean(text)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
