"""What an AI walk costs: the tokens every generator and judge call was billed, from the
service's own ``usage``, summed per walk.

A model call reports its usage with ``record`` (a cancelled stream too: its input was
billed); whoever runs calls for a walk (the walk screen, a service) opens a ``Meter``
around them with ``metered``, so prefetches in their own tasks count for the walk that
started them (a task copies the context it was made in). Nothing here knows the store:
``services.walks.ai_steps`` keeps each served node's share in its audit entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

FIELDS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
ROLES = ("generator", "judge")


@dataclass
class Meter:
    """Tokens and calls by role (generator, judge), as counted since the last ``take``."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, role: str, usage: Mapping[str, Any]) -> None:
        row = self.counts.setdefault(role, dict.fromkeys(("calls", *FIELDS), 0))
        row["calls"] += 1
        for name in FIELDS:
            row[name] += int(usage.get(name) or 0)

    def take(self) -> dict[str, dict[str, int]]:
        """What was counted, and start again from nothing (a served node's share)."""
        counts, self.counts = self.counts, {}
        return counts


_METER: ContextVar[Meter | None] = ContextVar("rflow_ai_meter", default=None)


@contextmanager
def metered(meter: Meter | None) -> Iterator[None]:
    """Count every model call made inside (and in tasks started inside) into ``meter``."""
    token = _METER.set(meter)
    try:
        yield
    finally:
        _METER.reset(token)


def record(role: str, usage: Mapping[str, Any] | None) -> None:
    """One call's billed usage, into the meter of whoever made the call (none: not counted)."""
    meter = _METER.get()
    if meter is not None and usage is not None:
        meter.add(role, usage)


def anthropic_usage(usage: Any) -> dict[str, int] | None:
    """The Messages API's ``usage`` as plain counts (cache fields 0 when absent)."""
    if usage is None:
        return None
    return {name: int(getattr(usage, name, 0) or 0) for name in FIELDS}


def total(shares: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """The sum of stored shares (``Meter.take`` results), by role, with an ``all`` row."""
    sums: dict[str, dict[str, int]] = {}
    for share in shares:
        for role, row in share.items():
            if not isinstance(row, Mapping):
                continue
            into = sums.setdefault(str(role), dict.fromkeys(("calls", *FIELDS), 0))
            for name in into:
                value = row.get(name)
                into[name] += value if isinstance(value, int) else 0
    if sums:
        sums["all"] = {name: sum(row[name] for row in sums.values()) for name in ("calls", *FIELDS)}
    return sums
