"""The key sheet (? or F1): the keys of the screen it was opened on and the global
ones, read from the bindings themselves so the sheet cannot drift from the code."""

from __future__ import annotations

from typing import Any, NamedTuple

from rich.table import Table
from rich.text import Text
from textual.actions import parse
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEY_NAMES = {"escape": "Esc", "question_mark": "?", "pageup": "PgUp", "pagedown": "PgDn"}


def key_label(key: str) -> str:
    """A key as the README and the sheet write it: Ctrl+P, F1, Esc, ?, y."""
    *modifiers, last = key.split("+")
    if last in KEY_NAMES:
        name = KEY_NAMES[last]
    elif len(last) == 1:
        name = last.upper() if modifiers else last
    else:
        name = last.upper() if last[0] == "f" and last[1:].isdigit() else last.capitalize()
    return "+".join([m.capitalize() for m in modifiers] + [name])


class KeyRow(NamedTuple):
    keys: str
    description: str
    enabled: bool


def key_rows(node: Any) -> list[KeyRow]:
    """One row per action bound on ``node`` (not inherited from focused widgets), in binding order.

    Keys with the same description share a row ("1 / y", "F1 / ?"). An action the node hides
    (``check_action`` returns False) is left out; one it disables (None) is marked.
    """
    ours = {binding.action for binding in own_bindings(type(node))}
    grouped: dict[str, tuple[list[str], Binding]] = {}
    for _key, binding in node._bindings:  # the live map, so a keymap change shows here too
        if binding.action not in ours or binding.system or not binding.description:
            continue
        keys, _ = grouped.setdefault(binding.description, ([], binding))
        shown = binding.key_display or key_label(binding.key)
        if shown not in keys:
            keys.append(shown)
    rows = []
    for keys, binding in grouped.values():
        namespace, name, params = parse(binding.action)
        target = getattr(node, namespace, node) if namespace else node
        state = target.check_action(name, params)
        if state is False:
            continue
        rows.append(KeyRow(" / ".join(keys), binding.description, state is not None))
    return rows


def screen_key_rows(screen: Any) -> list[KeyRow]:
    """The keys of the widgets on ``screen`` that declare their own (the walk's answer keys
    live on its AnswerBar), then the screen's."""
    rows = [row for widget in screen.query("*") if own_bindings(type(widget)) for row in key_rows(widget)]
    return rows + key_rows(screen)


def own_bindings(node_class: type) -> list[Binding]:
    """Bindings rflow declares on a screen or app class and its rflow bases (Textual's generic Tab/Ctrl+C left out)."""
    found = []
    for cls in node_class.__mro__:
        if not cls.__module__.startswith("textual."):
            found += [b for b in cls.__dict__.get("BINDINGS", []) if isinstance(b, Binding)]
    return found


def key_table(title: str, rows: list[KeyRow]) -> Table:
    table = Table(
        title=title, title_justify="left", title_style="bold", show_header=False, box=None, padding=(0, 2, 0, 0)
    )
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for row in rows:
        description = Text(row.description) if row.enabled else Text(f"{row.description} (not now)", style="dim")
        table.add_row(Text(row.keys), description)
    return table


class KeySheet(ModalScreen[None]):
    """Closes on Esc, ?, F1 or q."""

    BINDINGS = [Binding("escape,question_mark,f1,q", "close", "Close", show=False)]

    def __init__(self, screen: Any) -> None:
        super().__init__()
        self.for_screen = screen

    def compose(self) -> ComposeResult:
        name = getattr(self.for_screen, "KEY_SHEET_TITLE", "") or self.for_screen.__class__.__name__.removesuffix(
            "Screen"
        )
        with Vertical(classes="dialog", id="key-sheet"):
            yield Static(f"Keys · {name}", classes="dialog-title")
            with VerticalScroll():
                yield Static(key_table("This screen", screen_key_rows(self.for_screen)), id="screen-keys")
                yield Static(key_table("Everywhere", key_rows(self.app)), id="global-keys")
            yield Static("Esc closes", classes="field-label")

    def action_close(self) -> None:
        self.dismiss(None)
