"""The node-generator interface, its errors, and the registry that picks one by name.

A generator turns (problem text, category, walked path) into one raw node dict.
It knows nothing of the store or the screens; every node it returns is checked by
``rflow_tui.ai.validate`` before anyone stores or shows it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, runtime_checkable


@dataclass(frozen=True)
class NodeContext:
    """What determines the next node. ``rejection`` carries why the last try was refused."""

    problem_text: str
    category: str
    walked_path: list[dict[str, Any]] = field(default_factory=list)
    rejection: str | None = None


@runtime_checkable
class NodeGenerator(Protocol):
    name: str

    async def generate(self, context: NodeContext) -> dict[str, Any]:
        """Return one raw node: {id, type, text, yes_label?, no_label?}."""
        ...


class GenerationError(Exception):
    """A node could not be produced. ``str(exc)`` is written for the technician."""

    kind = "error"


class NoGeneratorError(GenerationError):
    kind = "no_generator"


class UnsafeNodeError(GenerationError):
    """The generator twice produced a node that failed validation; nothing is shown."""

    kind = "unsafe"


class InvalidNodeError(GenerationError):
    """One node failed validation (schema, lengths, labels or the hard floor)."""

    kind = "invalid"


GeneratorFactory = Callable[..., NodeGenerator]
_BUILTIN: dict[str, str] = {
    "anthropic": "rflow_tui.ai.anthropic:AnthropicGenerator.from_settings",
    "fixture": "rflow_tui.ai.fixture:ReplayGenerator.from_settings",
}
ENTRY_POINT_GROUP = "rflow.generators"


def _load(target: str) -> GeneratorFactory:
    import importlib

    module_name, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def available_generators() -> dict[str, str]:
    """Built-in names plus third-party ones from the ``rflow.generators`` entry points."""
    from importlib.metadata import entry_points

    names = dict(_BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        names.setdefault(ep.name, ep.value)
    return names


def make_generator(name: str, settings: Any) -> NodeGenerator:
    """Build the generator ``name`` from settings (an ``LLMSettings``). Imports lazily.

    With ``record_to`` set, the generator is wrapped so every exchange is recorded there.
    """
    target = available_generators().get(name)
    if target is None:
        known = ", ".join(sorted(available_generators()))
        raise NoGeneratorError(f"no node generator named '{name}' (known: {known})")
    generator = _load(target)(settings)
    record_to = getattr(settings, "record_to", "")
    if record_to:
        from pathlib import Path

        from rflow_tui.ai.fixture import RecordingGenerator

        generator = RecordingGenerator(generator, Path(record_to).expanduser())
    return generator
