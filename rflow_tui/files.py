"""Text files people hand to rflow (ticket imports, flow documents, the config file).

Read as UTF-8 one line at a time, so a file that is not text (Latin-1 from an old
spreadsheet, a binary picked by mistake, NUL bytes) is refused with the line it
went wrong on, never a traceback, and a large import never sits in memory whole.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


class FileProblem(ValueError):
    """The file cannot be read as text; the message names the file, the line and what to do."""


def text_lines(path: Path) -> Iterator[str]:
    """The file's lines, decoded (a UTF-8 byte-order mark is dropped); FileProblem if it is not UTF-8 text."""
    try:
        with open(path, "rb") as handle:
            yield from _decoded(path, handle)
    except OSError as exc:
        raise FileProblem(f"{path}: cannot be read: {exc.strerror}") from exc


def _decoded(path: Path, handle: BinaryIO) -> Iterator[str]:
    for number, raw in enumerate(handle, start=1):
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        if b"\x00" in raw:
            raise FileProblem(f"{path} line {number}: contains a NUL byte; this looks like a binary file, not text")
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FileProblem(
                f"{path} line {number}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                "save it as UTF-8 (a spreadsheet's 'CSV UTF-8') and try again"
            ) from None


def read_text(path: Path) -> str:
    """The whole file as text, with the same checks as ``text_lines``."""
    return "".join(text_lines(path))
