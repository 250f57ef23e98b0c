"""Recorded fixtures: deterministic replay, clear misses, validated loads, the demo recording."""

from __future__ import annotations

import json
import re
from typing import ClassVar

import pytest

from rflow_tui.ai.base import NodeContext
from rflow_tui.ai.fixture import (
    DEMO_FIXTURE,
    FixtureError,
    NotInRecordingError,
    RecordingGenerator,
    ReplayGenerator,
    fixture_key,
    load_fixture,
)
from rflow_tui.ai.registry import make_generator
from rflow_tui.config import LLMSettings
from rflow_tui.domain.walk_step import StepSource, WalkStep
from rflow_tui.models import Ticket
from rflow_tui.services.demo import DEMO_TICKETS
from rflow_tui.services.tickets import problem_text


def demo_context(ticket_id: str, path=()) -> NodeContext:
    row = next(t for t in json.loads(DEMO_TICKETS.read_text()) if t["ticket_id"] == ticket_id)
    ticket = Ticket(account_id=0, **row)
    return NodeContext(problem_text=problem_text(ticket), category=ticket.category, walked_path=list(path))


def step(node: dict, answer: str | None, note: str | None = None) -> WalkStep:
    return WalkStep.answering(StepSource.AI, node, answer, note)


async def walk_all(generator, ticket_id: str) -> tuple[set[str], int]:
    """Follow every branch from the first node; return the terminal node types reached."""
    terminals, served = set(), 0
    frontier = [[]]
    while frontier:
        path = frontier.pop()
        node = await generator.generate(demo_context(ticket_id, path))
        served += 1
        if node["type"] == "question":
            frontier += [[*path, step(node, "yes")], [*path, step(node, "no")]]
        elif node["type"] == "instruction":
            frontier.append([*path, step(node, None)])
        else:
            terminals.add(node["type"])
    return terminals, served


async def test_demo_recording_covers_three_tickets_end_to_end():
    replay = ReplayGenerator(DEMO_FIXTURE)
    kinds = set()
    for ticket_id in ("T-1001", "T-1002", "T-1003"):
        terminals, _ = await walk_all(replay, ticket_id)
        assert terminals == {"resolution", "escalate"}, ticket_id
    first = await replay.generate(demo_context("T-1001"))
    assert (first["yes_label"], first["no_label"]) == ("Microsoft account", "Local account")
    for exchange in replay.exchanges.values():
        kinds.add(exchange["node"]["type"])
    assert {"question", "instruction", "resolution", "escalate"} <= kinds


async def test_replay_is_deterministic_and_ignores_notes():
    replay = ReplayGenerator(DEMO_FIXTURE)
    first = await replay.generate(demo_context("T-1001"))
    with_note = [step(first, "yes", note="user is on a work laptop")]
    without_note = [step(first, "yes")]
    assert await replay.generate(demo_context("T-1001", with_note)) == await replay.generate(
        demo_context("T-1001", without_note)
    )
    assert await replay.generate(demo_context("T-1001")) == first


async def test_a_context_the_recording_does_not_hold_names_the_fixture():
    replay = ReplayGenerator(DEMO_FIXTURE)
    edited = NodeContext(problem_text="Outlook crashes when printing", category="email")
    with pytest.raises(NotInRecordingError, match=re.escape("not in the recording fixture.json")):
        await replay.generate(edited)


def test_every_fixture_node_is_validated_on_load(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "format": "rflow.fixture/1",
                "exchanges": [
                    {
                        "context": {"category": "x", "problem_text": "y", "path": []},
                        "node": {"id": "i1", "type": "instruction", "text": "Disable the antivirus first"},
                    }
                ],
            }
        )
    )
    with pytest.raises(FixtureError, match=re.escape("bad.json exchange 0: its node fails validation")):
        load_fixture(bad)


@pytest.mark.parametrize("content, message", [("{", "not valid JSON"), ('{"exchanges": []}', "not an rflow fixture")])
def test_malformed_fixture_files_are_refused_clearly(tmp_path, content, message):
    path = tmp_path / "f.json"
    path.write_text(content)
    with pytest.raises(FixtureError, match=message):
        load_fixture(path)


def test_key_depends_on_category_problem_and_chosen_labels_not_on_case_or_spacing():
    base = {"category": "email", "problem_text": "Outlook  will not\nopen", "path": [["q1", "Local account"]]}
    assert fixture_key(base) == fixture_key({**base, "problem_text": "outlook will not open", "category": "Email"})
    assert fixture_key(base) != fixture_key({**base, "path": [["q1", "Microsoft account"]]})
    assert fixture_key(base) != fixture_key({**base, "category": "printing"})


class Live:
    name = "anthropic"
    model = "claude-haiku-5-5"
    last_usage: ClassVar[dict[str, int]] = {"input_tokens": 812, "output_tokens": 64}

    async def generate(self, context):
        return {"id": "q1", "type": "question", "text": "Is the screen on?"}


async def test_recording_writes_a_reviewable_fixture_that_replays(tmp_path):
    path = tmp_path / "rec.json"
    recorder = RecordingGenerator(Live(), path)
    context = NodeContext(problem_text="Screen black", category="hardware")
    await recorder.generate(context)
    data = json.loads(path.read_text())
    [exchange] = data["exchanges"]
    assert exchange["model"] == "claude-haiku-5-5" and exchange["usage"]["input_tokens"] == 812
    assert exchange["context"] == {"category": "hardware", "problem_text": "Screen black", "path": []}
    assert isinstance(exchange["latency_ms"], int)
    assert "api_key" not in path.read_text() and "sk-" not in path.read_text()
    assert (await ReplayGenerator(path).generate(context))["text"] == "Is the screen on?"


async def test_replay_can_simulate_the_recorded_latency(tmp_path, monkeypatch):
    slept = []

    async def fake_sleep(seconds):
        slept.append(seconds)

    monkeypatch.setattr("rflow_tui.ai.fixture.asyncio.sleep", fake_sleep)
    await ReplayGenerator(DEMO_FIXTURE).generate(demo_context("T-1001"))
    assert slept == []
    await ReplayGenerator(DEMO_FIXTURE, simulate_latency=True).generate(demo_context("T-1001"))
    assert len(slept) == 1 and slept[0] > 0.1


def test_registry_builds_replay_by_name_and_wraps_it_for_recording(tmp_path):
    replay = make_generator("fixture", LLMSettings(generator="fixture"))
    assert isinstance(replay, ReplayGenerator) and replay.path == DEMO_FIXTURE
    wrapped = make_generator("fixture", LLMSettings(generator="fixture", record_to=str(tmp_path / "r.json")))
    assert isinstance(wrapped, RecordingGenerator) and isinstance(wrapped.inner, ReplayGenerator)


def test_third_party_generators_load_from_the_entry_point_group(monkeypatch):
    from importlib.metadata import EntryPoint

    from rflow_tui.ai import registry

    ep = EntryPoint(
        name="echo", value="tests.test_ai_fixture:EchoGenerator.from_settings", group=registry.GENERATOR_ENTRY_POINTS
    )
    monkeypatch.setattr(
        "importlib.metadata.entry_points", lambda group=None: [ep] if group == registry.GENERATOR_ENTRY_POINTS else []
    )
    assert "echo" in registry.available_generators()
    assert isinstance(make_generator("echo", LLMSettings()), EchoGenerator)


def test_unknown_generator_name_is_a_clear_error():
    from rflow_tui.ai.errors import NoGeneratorError

    with pytest.raises(NoGeneratorError, match=r"no node generator named 'gpt' \(known: .*fixture"):
        make_generator("gpt", LLMSettings())


class EchoGenerator:
    name = "echo"

    @classmethod
    def from_settings(cls, llm):
        return cls()

    async def generate(self, context):
        return {"id": "i1", "type": "instruction", "text": context.problem_text}
