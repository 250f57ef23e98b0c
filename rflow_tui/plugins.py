"""Entry points by group: how rflow finds generators, judges and PSA adapters, built-in or
installed by a third party, and imports each only when it is used."""

from __future__ import annotations

from typing import Any


def load_target(target: str) -> Any:
    """The object an entry-point style ``module:attr.attr`` names, imported now."""
    import importlib

    module_name, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def registered(builtin: dict[str, str], group: str) -> dict[str, str]:
    """Built-in names plus third-party ones from an entry-point group (built-ins win)."""
    from importlib.metadata import entry_points

    names = dict(builtin)
    for ep in entry_points(group=group):
        names.setdefault(ep.name, ep.value)
    return names
