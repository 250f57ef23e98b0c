"""Untrusted text made inert for a terminal: one definition used by every layer."""

from __future__ import annotations

import re

ESCAPE_SEQUENCES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b.?")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def strip_controls(value: object) -> str:
    """Drop terminal escape sequences and control characters; newlines and tabs stay."""
    text = "" if value is None else str(value)
    return CONTROL_CHARACTERS.sub("", ESCAPE_SEQUENCES.sub("", text.replace("\r\n", "\n")))
