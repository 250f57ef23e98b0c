"""Free text on its way into the store: the one gate every service passes it through.

Terminal escapes, control and bidi characters are cleaned away (``text.clean``);
a NUL byte is refused instead, naming the field, since it means binary or a forged
value (and PostgreSQL cannot store it: the app would fail on the write, not here).
"""

from __future__ import annotations

from rflow_tui.services.errors import ValidationFailed
from rflow_tui.text import clean


def accepted(value: object, what: str, *, single_line: bool = False) -> str:
    """``value`` as it may be stored; ValidationFailed saying ``what`` holds a NUL byte."""
    text = "" if value is None else str(value)
    if "\x00" in text:
        raise ValidationFailed(f"{what} contains a NUL byte; remove it and try again")
    return clean(text, single_line=single_line)


def accepted_line(value: object, what: str) -> str:
    """A single-line field (a name, an email, an id, a title): invisible characters go too."""
    return accepted(value, what, single_line=True)
