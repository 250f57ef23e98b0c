"""Untrusted text made inert for a terminal: one definition used by every layer.

``clean`` is both the sanitiser on the way in (services store what it returns)
and the guard on the way out (screens, titles, toasts, CLI lines, exports), so
text stored before the sanitiser existed is still safe to show.
"""

from __future__ import annotations

import re
import unicodedata

# CSI, OSC, DCS/SOS/PM/APC strings and two-byte escapes, in their 7-bit and 8-bit (C1) forms.
ESCAPE_SEQUENCES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d-\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b.?"
)
# C0 except tab and newline, DEL, C1; and the bidi embeddings, overrides, isolates and marks.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# Characters that take no room on screen: a single-line field (a name, an id, a label) loses them,
# so "Ye\u200bs" and "Yes" are one label. Every format character (Unicode category Cf, as of
# Unicode 15) plus the letters that render blank (Hangul fillers, the blank Braille pattern).
INVISIBLE = re.compile(
    "[\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
    "\u115f\u1160\u2800\u3164\uffa0]"
)


def clean(value: object, *, single_line: bool = False) -> str:
    """Text without terminal escapes, control or bidi characters, in NFC.

    Newlines and tabs stay; ``single_line`` also drops invisible characters and
    folds every run of whitespace into one space.
    """
    text = "" if value is None else str(value)
    if text.isascii() and text.isprintable():  # the common case, and ~20x faster (bulk imports)
        return " ".join(text.split()) if single_line else text
    text = CONTROL_CHARACTERS.sub("", ESCAPE_SEQUENCES.sub("", text.replace("\r\n", "\n")))
    if single_line:
        text = " ".join(INVISIBLE.sub("", text).split())
    return unicodedata.normalize("NFC", text)


def looks_blank(value: str) -> bool:
    """True when nothing would show: only spaces and invisible characters."""
    return not clean(value, single_line=True)


def same_label(a: str, b: str) -> bool:
    """Two labels a tech could not tell apart (case, width, invisible characters aside)."""

    def key(label: str) -> str:
        return unicodedata.normalize("NFKC", clean(label, single_line=True)).casefold()

    return key(a) == key(b)


def has_nul(value: object) -> bool:
    """A NUL byte means binary or a forged value: refused at the way in, never cleaned away."""
    return isinstance(value, str) and "\x00" in value


def inert_json(value: object, **dumps: object) -> str:
    """JSON for a terminal: every control or bidi character inside a string becomes a \\u escape.

    Lossless (it parses back to the same value), unlike ``clean``; ``json.dumps`` alone
    leaves DEL, C1 controls and bidi characters raw when ``ensure_ascii`` is off.
    """
    import json

    text = json.dumps(value, ensure_ascii=False, **dumps)  # type: ignore[arg-type]
    return CONTROL_CHARACTERS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
