"""Streaming a node: the SDK's stream parsed as it grows, shown sentence by sentence,
each sentence only once the rules layer passes it; the node whole only after both layers."""

from __future__ import annotations

import json

import pytest

from rflow_tui.ai.anthropic import AnthropicGenerator
from rflow_tui.ai.base import NodeContext
from rflow_tui.ai.errors import UnsafeNodeError
from rflow_tui.ai.fixture import DEMO_FIXTURE, ReplayGenerator, load_fixture
from rflow_tui.ai.generate import next_valid_node
from rflow_tui.ai.stream import SentencePreview, whole_sentences
from tests.fakes import ScriptedJudge
from tests.messages_standin import StandIn

THREE = "Open Outlook in safe mode. Does it start now? If it does, an add-in is the cause."
NODE = {"id": "q-safe", "type": "question", "text": THREE, "yes_label": "It starts", "no_label": "Still fails"}
UNSAFE = {
    "id": "i-av",
    "type": "instruction",
    "text": "Open Windows Security. Turn off real-time protection in Defender. Then try again.",
    "yes_label": "",
    "no_label": "",
}
CONTEXT = NodeContext(problem_text="Outlook will not open", category="email")


def recorder() -> tuple[list, SentencePreview]:
    seen: list = []
    return seen, SentencePreview(lambda kind, text: seen.append((kind, text)))


def test_only_whole_sentences_are_shown_until_the_text_is_finished():
    assert whole_sentences("Open Outlook in safe mode. Does it st", finished=False) == "Open Outlook in safe mode."
    assert whole_sentences("Open Outlook in safe mo", finished=False) == ""
    assert whole_sentences("Version 2.5 is current. Che", finished=False) == "Version 2.5 is current."
    assert whole_sentences("Does it start now?", finished=True) == "Does it start now?"


def test_the_preview_grows_one_sentence_at_a_time_and_the_last_once_the_labels_begin():
    seen, preview = recorder()
    for cut in range(1, len(THREE) + 1):
        preview.update({"id": "q-safe", "type": "question", "text": THREE[:cut]})
    preview.update({**NODE, "no_label": ""})
    assert [text for _, text in seen] == [
        "Open Outlook in safe mode.",
        "Open Outlook in safe mode. Does it start now?",
        THREE,
    ]
    assert {kind for kind, _ in seen} == {"question"}


def test_a_sentence_the_rules_refuse_is_never_shown_nor_anything_after_it():
    seen, preview = recorder()
    text = UNSAFE["text"]
    for cut in range(1, len(text) + 1):
        preview.update({"id": "i-av", "type": "instruction", "text": text[:cut]})
    preview.update(UNSAFE)
    assert seen == [("instruction", "Open Windows Security.")]


def test_a_try_that_starts_over_clears_what_was_shown():
    seen, preview = recorder()
    preview.update({"type": "question", "text": "Open Outlook in safe mode. Do"})
    preview.update({})
    assert seen[-1] == (None, "") and preview.shown == ""


async def test_the_anthropic_generator_streams_through_the_sdk_and_the_preview_follows_the_chunks():
    standin = StandIn(NODE, chunks=12)
    gen = AnthropicGenerator(api_key="sk-test", client=standin.client(), max_retries=0)
    seen: list = []
    node = await next_valid_node(gen, CONTEXT, ScriptedJudge(), on_preview=lambda kind, text: seen.append(text))
    assert node["text"] == THREE and node["yes_label"] == "It starts"
    assert standin.requests[0]["stream"] is True
    assert standin.requests[0]["output_config"]["format"]["type"] == "json_schema"
    assert seen[0] == "Open Outlook in safe mode." and seen[-1] == THREE and len(seen) == 3
    assert gen.last_usage is not None and gen.last_usage["output_tokens"] > 0


async def test_an_unsafe_streamed_node_shows_only_its_safe_first_sentence_and_is_then_refused():
    standin = StandIn(UNSAFE, chunks=16)
    gen = AnthropicGenerator(api_key="sk-test", client=standin.client(), max_retries=0)
    seen: list = []
    with pytest.raises(UnsafeNodeError):
        await next_valid_node(gen, CONTEXT, None, on_preview=lambda kind, text: seen.append(text))
    assert "Turn off" not in json.dumps(seen)
    assert seen.count("Open Windows Security.") == 2  # each of the two tries, cleared in between
    assert seen[-1] == ""  # nothing of a refused node stays on screen


async def test_demo_replay_streams_the_recorded_node_in_pieces_with_its_latency():
    replay = ReplayGenerator(DEMO_FIXTURE, simulate_latency=True)
    exchange = next(e for e in load_fixture(DEMO_FIXTURE).values() if e["context"]["path"] == [])
    context = NodeContext(problem_text=exchange["context"]["problem_text"], category=exchange["context"]["category"])
    snapshots: list = []
    node = await replay.stream(context, snapshots.append)
    assert node == exchange["node"] and len(snapshots) > 3
    texts = [s.get("text", "") for s in snapshots]
    assert texts == sorted(texts, key=len) and texts[-1] == exchange["node"]["text"]
