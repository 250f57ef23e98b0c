"""Copying a transcript out of the app, honestly.

Textual copies with OSC 52, which the terminal may silently ignore: tmux drops it
unless ``set-clipboard`` is on, and over SSH it depends on the local terminal.
Nothing tells the app whether it worked, so in those places the transcript is
also written to a file, and the message says where instead of claiming a copy.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Mapping
from pathlib import Path


def unverifiable_clipboard(environ: Mapping[str, str] | None = None) -> str | None:
    """Why a clipboard write may not arrive ("inside tmux", "over SSH"), or None."""
    env = os.environ if environ is None else environ
    if env.get("TMUX"):
        return "inside tmux"
    if env.get("SSH_TTY") or env.get("SSH_CONNECTION"):
        return "over SSH"
    return None


def transcripts_dir() -> Path:
    from platformdirs import user_data_path

    return user_data_path("rflow", appauthor=False) / "transcripts"


def save_transcript(text: str, ticket_id: str, session_id: int, folder: Path | None = None) -> Path:
    """Write the transcript to ``<data dir>/transcripts/<ticket>-walk-<id>.md``; returns the path.

    Another desk's walk can carry the same ticket and walk number: a file that holds other
    text is never overwritten, the next free name (``…-2.md``, ``…-3.md``) is taken instead.
    """
    folder = folder or transcripts_dir()
    folder.mkdir(parents=True, exist_ok=True)
    safe_ticket = re.sub(r"[^A-Za-z0-9._-]+", "_", ticket_id)[:64] or "ticket"
    stem = f"{safe_ticket}-walk-{session_id}"
    for n in range(1, 1000):
        path = folder / (f"{stem}.md" if n == 1 else f"{stem}-{n}.md")
        try:
            with path.open("x", encoding="utf-8") as out:
                out.write(text)
            return path
        except FileExistsError:
            if path.read_text(encoding="utf-8", errors="replace") == text:
                return path  # the same transcript again
    raise FileExistsError(errno.EEXIST, f"too many transcripts named {stem} in {folder}")


def copy_transcript(app, text: str, ticket_id: str, session_id: int) -> str:
    """Send ``text`` to the clipboard; where that may not arrive, also to a file. Returns what to tell the user."""
    app.copy_to_clipboard(text)
    why = unverifiable_clipboard()
    if why is None:
        return "Transcript copied as Markdown"
    try:
        path = save_transcript(text, ticket_id, session_id)
    except OSError as exc:
        return (
            f"The clipboard may not accept a copy {why}, and the transcript file could not be written: {exc.strerror}"
        )
    return f"Transcript saved to {path} (the clipboard may not accept a copy {why})"
