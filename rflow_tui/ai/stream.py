"""A node shown while it is being written: whole sentences, each only once the rules pass it.

A streaming generator reports its node as it grows (partial snapshots, the last
string cut off). ``SentencePreview`` turns them into what the tech may already
read: the node's text up to its last whole sentence, shown only when the rules
layer passes that text (the labels are not written yet, so it is read alone). The
first sentence the rules refuse stops the preview for that try: nothing after it
shows. The answer buttons never come from here: they wait for the whole node to
pass validation and both safety layers (``ai.generate``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from rflow_tui.ai.validate import MAX_TEXT
from rflow_tui.safety import scan_node
from rflow_tui.text import clean

PreviewListener = Callable[[str | None, str], None]
"""Called with (the node's type if known, the text the tech may see); (None, "") clears it."""

_SENTENCE_END = re.compile(r"[.!?\u2026][\"'\u201d\u2019)\]]*(?=\s)")
_LATER_KEYS = ("yes_label", "no_label")  # written after the text: once one appears, the text is whole


def whole_sentences(text: str, finished: bool) -> str:
    """``text`` up to its last whole sentence (all of it once ``finished``)."""
    if finished:
        return text.strip()
    ends = [match.end() for match in _SENTENCE_END.finditer(text)]
    return text[: ends[-1]].strip() if ends else ""


class SentencePreview:
    """Feeds a ``PreviewListener`` from partial node snapshots (see the module docstring)."""

    def __init__(self, listener: PreviewListener) -> None:
        self.listener = listener
        self.shown = ""
        self.stopped = False

    def update(self, partial: dict[str, Any]) -> None:
        """Take the node as written so far; a snapshot without text (a try starting over) clears."""
        text = partial.get("text") if isinstance(partial, dict) else None
        if not isinstance(text, str):
            if self.shown or self.stopped:
                self.shown, self.stopped = "", False
                self.listener(None, "")
            return
        if self.stopped:
            return
        finished = any(key in partial for key in _LATER_KEYS)
        visible = whole_sentences(clean(text), finished)
        if len(visible) <= len(self.shown):
            return
        if len(visible) > MAX_TEXT or scan_node(visible, []):
            self.stopped = True  # the rules refuse it (or it is too long): show nothing more of this try
            return
        self.shown = visible
        node_type = partial.get("type")
        self.listener(node_type if isinstance(node_type, str) else None, visible)
