"""Small display helpers shared by screens."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """The clock screens use for ages (tests freeze it)."""
    return datetime.now(UTC)


def age(when: datetime | None) -> str:
    if when is None:
        return "-"
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = max(0, int((now() - when).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def plural(count: int, noun: str) -> str:
    """ "1 step", "2 steps"."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def since(when: datetime | None) -> str:
    """An age as the lists show it: "5m ago"; "-" when unknown."""
    return "-" if when is None else f"{age(when)} ago"
