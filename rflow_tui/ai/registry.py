"""The one place that builds node generators and safety judges by name.

Built-ins and third-party entry points (``rflow.generators``, ``rflow.judges``) are
looked up here and imported lazily, so the interface modules import no implementation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rflow_tui.ai.base import NodeGenerator
from rflow_tui.ai.errors import NoGeneratorError, NoJudgeError
from rflow_tui.ai.judge import NodeJudge
from rflow_tui.plugins import load_target, registered

GeneratorFactory = Callable[..., NodeGenerator]
GENERATORS: dict[str, str] = {
    "anthropic": "rflow_tui.ai.anthropic:AnthropicGenerator.from_settings",
    "fixture": "rflow_tui.ai.fixture:ReplayGenerator.from_settings",
    "openai": "rflow_tui.ai.openai:OpenAIGenerator.from_settings",
}
GENERATOR_ENTRY_POINTS = "rflow.generators"


def available_generators() -> dict[str, str]:
    """Built-in names plus third-party ones from the ``rflow.generators`` entry points."""
    return registered(GENERATORS, GENERATOR_ENTRY_POINTS)


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


SERVICES = ("anthropic", "openai")  # the built-in generators that call a model service


def own_connection(llm: Any, service: str) -> tuple[str, str]:
    """``[llm] api_key`` and ``base_url`` for ``service``'s generator or judge, or ("", "")
    when they belong to the generator of another service: a judge on another service
    must not be sent the generator's key, nor be pointed at its server. The caller then
    reads its own environment variables."""
    generator = getattr(llm, "generator", "")
    if generator in SERVICES and generator != service:
        return "", ""
    return str(getattr(llm, "api_key", "") or ""), str(getattr(llm, "base_url", "") or "")


JUDGE_AUTO = "auto"
JUDGE_OFF = "off"
JUDGE_ENTRY_POINTS = "rflow.judges"
JUDGES: dict[str, str] = {
    "anthropic": "rflow_tui.ai.anthropic_judge:AnthropicJudge.from_settings",
    "fixture": "rflow_tui.ai.fixture:ReplayJudge.from_settings",
    "openai": "rflow_tui.ai.openai_judge:OpenAIJudge.from_settings",
}


def available_judges() -> dict[str, str]:
    """Built-in judge names plus third-party ones from the ``rflow.judges`` entry points."""
    return registered(JUDGES, JUDGE_ENTRY_POINTS)


def setting_values() -> list[str]:
    """Every value ``[llm] judge`` accepts."""
    return [JUDGE_AUTO, JUDGE_OFF, *sorted(available_judges())]


def resolved_judge_name(llm: Any) -> str:
    """``auto`` made concrete: a built-in generator gets the judge of its own kind (the demo's
    fixture the fixture judge; a private model a judge on the same server, so no step
    leaves it to be judged), anything else Anthropic's."""
    name = getattr(llm, "judge", JUDGE_AUTO) or JUDGE_AUTO
    if name != JUDGE_AUTO:
        return name
    generator = getattr(llm, "generator", "")
    return generator if generator in JUDGES else "anthropic"


def make_judge(llm: Any) -> NodeJudge | None:
    """The judge ``[llm] judge`` names, built from the ``[llm]`` settings; None when off.

    With ``record_to`` set, every verdict is also written into that recording.
    Raises NoJudgeError when it cannot be built.
    """
    name = resolved_judge_name(llm)
    if name == JUDGE_OFF:
        return None
    target = available_judges().get(name)
    if target is None:
        raise NoJudgeError(f"no safety judge named '{name}' (known: {', '.join(setting_values())})")
    try:
        judge: NodeJudge = load_target(target)(llm)  # an entry point: typed by the protocol it promises
    except ImportError as exc:
        raise NoJudgeError(f"the '{name}' safety judge cannot load: {exc}") from exc
    record_to = getattr(llm, "record_to", "")
    if record_to:
        from pathlib import Path

        from rflow_tui.ai.fixture import RecordingJudge

        judge = RecordingJudge(judge, Path(record_to).expanduser())
    return judge
