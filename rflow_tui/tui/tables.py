"""Keeping the user's place in a table whose rows are reloaded (a kept screen shown again)."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable


def restore_place(table: DataTable[Any], row: int, scroll_y: float) -> None:
    """Cursor on ``row`` (or the last row), the view scrolled back to ``scroll_y`` once the
    new rows are laid out (before that, the table is too short to scroll)."""
    if table.row_count:
        table.move_cursor(row=min(row, table.row_count - 1), scroll=False)
    table.call_after_refresh(table.scroll_to, y=scroll_y, animate=False)
