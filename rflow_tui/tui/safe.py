"""Untrusted text (tickets, notes, LLM output) as inert plain text.

Textual's Static, Label and Button parse a ``str`` as markup, so a ticket subject
like ``[@click=app.quit]q[/]`` would become a live action. Everything untrusted
goes through ``plain`` (a ``Text``, never parsed) after ``clean`` strips terminal
escape sequences and control characters.
"""

from __future__ import annotations

from rich.text import Text

from rflow_tui.text import strip_controls



def clean(value: object, *, single_line: bool = False) -> str:
    """Drop escape sequences and control characters; keep newlines and tabs unless single_line."""
    text = strip_controls(value)
    if single_line:
        text = " ".join(text.split())
    return text


def plain(value: object, *, single_line: bool = False, style: str = "") -> Text:
    return Text(clean(value, single_line=single_line), style=style)
