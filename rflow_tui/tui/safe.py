"""Untrusted text (tickets, notes, LLM output) as inert plain text.

Textual's Static, Label and Button parse a ``str`` as markup, so a ticket subject
like ``[@click=app.quit]q[/]`` would become a live action. Everything untrusted
goes through ``plain`` (a ``Text``, never parsed) after ``clean`` strips terminal
escape sequences and control characters.
"""

from __future__ import annotations

import re

from rich.text import Text

_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(value: object, *, single_line: bool = False) -> str:
    """Drop escape sequences and control characters; keep newlines and tabs unless single_line."""
    text = _CONTROLS.sub("", _ESCAPES.sub("", "" if value is None else str(value)))
    if single_line:
        text = " ".join(text.split())
    return text


def plain(value: object, *, single_line: bool = False, style: str = "") -> Text:
    return Text(clean(value, single_line=single_line), style=style)
