"""The node-generator interface, its errors, and the registry that picks one by name.

A generator turns (problem text, category, walked path) into one raw node dict.
It knows nothing of the store or the screens; every node it returns is checked by
``rflow_tui.ai.validate`` before anyone stores or shows it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from rflow_tui.domain.walk_step import WalkStep


@dataclass(frozen=True)
class NodeContext:
    """What determines the next node.

    ``rejection`` says why the last try was refused and ``rejection_kind`` which way
    (``"malformed"`` output or an ``"unsafe"`` step): the retry prompt differs.

    ``walked_path`` holds every step, stepped-back ones included (``step.undone``).
    """

    problem_text: str
    category: str
    walked_path: list[WalkStep] = field(default_factory=list)
    rejection: str | None = None
    rejection_kind: str | None = None


@runtime_checkable
class NodeGenerator(Protocol):
    """Makes one raw node. A generator that can stream may also offer
    ``async stream(context, on_partial) -> dict``: the same node, with ``on_partial``
    called on the node as written so far (a dict, its last string cut off)."""

    name: str

    async def generate(self, context: NodeContext) -> dict[str, Any]:
        """Return one raw node: {id, type, text, yes_label?, no_label?}."""
        ...


PartialListener = Callable[[dict[str, Any]], None]


async def raw_node(
    generator: NodeGenerator, context: NodeContext, on_partial: PartialListener | None = None
) -> dict[str, Any]:
    """One raw node from ``generator``, streamed to ``on_partial`` when it can stream."""
    stream = getattr(generator, "stream", None)
    if on_partial is not None and stream is not None:
        node: dict[str, Any] = await stream(context, on_partial)
        return node
    return await generator.generate(context)


class GenerationError(Exception):
    """A node could not be produced. ``str(exc)`` is written for the technician."""

    kind = "error"


class NoGeneratorError(GenerationError):
    kind = "no_generator"


class GenerationCancelledError(GenerationError):
    """The tech stopped the generation (Esc); the answer they gave stays saved."""

    kind = "cancelled"


class GenerationTimeoutError(GenerationError):
    """The step's deadline passed (``ai.deadline``) before a node was ready."""

    kind = "timeout"


class UnsafeNodeError(GenerationError):
    """The last try broke a safety rule (after one retry); nothing is shown."""

    kind = "unsafe"


class UnusableOutputError(GenerationError):
    """The last try was not a usable node (after one retry); nothing is shown."""

    kind = "malformed"


class InvalidNodeError(GenerationError):
    """One node was refused: ``MalformedNodeError`` or ``SafetyRefusal`` say which way."""

    kind = "invalid"
    rejection_kind = "malformed"


class MalformedNodeError(InvalidNodeError):
    """The model's output is not a usable node: bad JSON, schema, lengths or labels."""


class SafetyRefusal(InvalidNodeError):
    """A well-formed node that one of the safety layers refused.

    Carries the rules broken as (id, description) pairs; the message names them and
    never quotes the node, so it is safe on screen, in a prompt and in a log.
    """

    rejection_kind = "unsafe"
    refused_by = "the safety rules"

    def __init__(self, rules: list[tuple[str, str]]) -> None:
        self.rules = list(rules)
        self.rule_ids = [rule_id for rule_id, _ in self.rules]
        named = "; ".join(f"{description} (rule {rule_id})" for rule_id, description in self.rules)
        super().__init__(f"{self.refused_by} refused it: {named}")


GeneratorFactory = Callable[..., NodeGenerator]
_BUILTIN: dict[str, str] = {
    "anthropic": "rflow_tui.ai.anthropic:AnthropicGenerator.from_settings",
    "fixture": "rflow_tui.ai.fixture:ReplayGenerator.from_settings",
}
ENTRY_POINT_GROUP = "rflow.generators"


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


def available_generators() -> dict[str, str]:
    """Built-in names plus third-party ones from the ``rflow.generators`` entry points."""
    return registered(_BUILTIN, ENTRY_POINT_GROUP)


def make_generator(name: str, settings: Any) -> NodeGenerator:
    """Build the generator ``name`` from settings (an ``LLMSettings``). Imports lazily.

    With ``record_to`` set, the generator is wrapped so every exchange is recorded there.
    """
    target = available_generators().get(name)
    if target is None:
        known = ", ".join(sorted(available_generators()))
        raise NoGeneratorError(f"no node generator named '{name}' (known: {known})")
    generator: NodeGenerator = load_target(target)(settings)  # an entry point: typed by the protocol it promises
    record_to = getattr(settings, "record_to", "")
    if record_to:
        from pathlib import Path

        from rflow_tui.ai.fixture import RecordingGenerator

        generator = RecordingGenerator(generator, Path(record_to).expanduser())
    return generator
