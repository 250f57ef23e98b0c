"""Recorded fixtures: replay a walk with no network and no key, or record a live one.

A fixture is a reviewable JSON file of exchanges: what determined a node (category,
normalised problem text, the path as (node id, chosen label) pairs) and the node,
with model, token usage and latency, and the safety judge's ``verdict`` on that node.
The tech's notes are not part of the key, so a demo replays however the notes are
typed. The fixture judge replays verdicts by the node's content alone (text and
labels), never by the ticket: the judge never sees the ticket, live or replayed.
Every node and verdict is validated when loaded.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rflow_tui.ai.base import NodeContext, NodeGenerator, PartialListener, raw_node
from rflow_tui.ai.errors import GenerationError, InvalidNodeError, JudgeError, VerdictNotInRecordingError, not_shown
from rflow_tui.ai.judge import CandidateNode, NodeJudge, Verdict
from rflow_tui.ai.validate import validate_node
from rflow_tui.domain.walk_step import WalkStep, live_steps

FORMAT = "rflow.fixture/1"
DEMO_FIXTURE = Path(__file__).resolve().parent.parent / "data" / "demo" / "fixture.json"


class FixtureError(GenerationError):
    """The fixture file cannot be used; the message names the file and the exchange."""

    kind = "fixture"


class NotInRecordingError(GenerationError):
    """Replay was asked for a step the recording does not hold."""

    kind = "not_in_recording"


def path_pairs(walked_path: list[WalkStep]) -> list[list[str]]:
    """(node id, chosen label) for each live step; an acknowledged instruction's label is ""."""
    return [[step.node_id, step.answer_label or ""] for step in live_steps(walked_path)]


def context_record(context: NodeContext) -> dict[str, Any]:
    return {
        "category": context.category,
        "problem_text": context.problem_text,
        "path": path_pairs(context.walked_path),
    }


def fixture_key(record: dict[str, Any]) -> str:
    material = [
        " ".join((record.get("category") or "").split()).casefold(),
        " ".join((record.get("problem_text") or "").split()).casefold(),
        [[node_id, " ".join(label.split()).casefold()] for node_id, label in record.get("path", [])],
    ]
    return hashlib.sha256(json.dumps(material, ensure_ascii=False).encode("utf-8")).hexdigest()[:32]


def load_fixture(path: Path) -> dict[str, dict[str, Any]]:
    """key -> exchange. Every node is validated like a live one; any problem names the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FixtureError(f"the recording {path} cannot be read: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise FixtureError(f"the recording {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("exchanges"), list):
        raise FixtureError(f"the recording {path} is not an rflow fixture (expected format {FORMAT})")
    exchanges: dict[str, dict[str, Any]] = {}
    for index, exchange in enumerate(data["exchanges"]):
        where = f"{path.name} exchange {index}"
        if not isinstance(exchange, dict) or not isinstance(exchange.get("context"), dict):
            raise FixtureError(f"{where}: needs a context and a node")
        try:
            node = validate_node(exchange.get("node"))
        except InvalidNodeError as exc:
            raise FixtureError(f"{where}: its node fails validation: {exc}") from exc
        key = fixture_key(exchange["context"])
        if exchange.get("key") not in (None, key):
            raise FixtureError(f"{where}: its key does not match its context (edited by hand?)")
        exchanges[key] = {**exchange, "node": node, "key": key}
        if exchange.get("verdict") is not None:
            try:
                exchanges[key]["verdict"] = Verdict.parse(exchange["verdict"])
            except JudgeError as exc:
                raise FixtureError(f"{where}: its verdict cannot be used: {exc}") from exc
    return exchanges


def fixture_path(llm: Any) -> Path:
    """The recording ``[llm] fixture`` names, else the shipped demo recording."""
    return Path(llm.fixture).expanduser() if getattr(llm, "fixture", "") else DEMO_FIXTURE


class ReplayGenerator:
    """Serves a fixture deterministically; never touches the network."""

    name = "fixture"

    def __init__(self, path: Path, *, simulate_latency: bool = False) -> None:
        self.path = Path(path)
        self.simulate_latency = simulate_latency
        self.exchanges = load_fixture(self.path)

    @classmethod
    def from_settings(cls, llm: Any) -> ReplayGenerator:
        return cls(fixture_path(llm), simulate_latency=bool(getattr(llm, "replay_latency", False)))

    def _exchange(self, context: NodeContext) -> dict[str, Any]:
        exchange = self.exchanges.get(fixture_key(context_record(context)))
        if exchange is None:
            raise NotInRecordingError(
                f"This step is not in the recording {self.path.name}: the demo only knows the "
                "answers it was recorded with. Escalate or resolve the ticket from here."
            )
        return exchange

    async def generate(self, context: NodeContext) -> dict[str, Any]:
        exchange = self._exchange(context)
        if self.simulate_latency and exchange.get("latency_ms"):
            await asyncio.sleep(float(exchange["latency_ms"]) / 1000)
        return dict(exchange["node"])

    async def stream(self, context: NodeContext, on_partial: PartialListener) -> dict[str, Any]:
        """The recorded node as a model streams it: its text growing in pieces, the labels
        last; with ``simulate_latency`` the recorded latency is spread over the pieces."""
        exchange = self._exchange(context)
        node = dict(exchange["node"])
        snapshots = growing(node, REPLAY_PIECES)
        pause = float(exchange.get("latency_ms") or 0) / 1000 / len(snapshots) if self.simulate_latency else 0.0
        for snapshot in snapshots:
            if pause:
                await asyncio.sleep(pause)
            on_partial(snapshot)
        return node


REPLAY_PIECES = 8


def growing(node: dict[str, Any], pieces: int) -> list[dict[str, Any]]:
    """``node`` as written so far, ``pieces`` times: the text in growing cuts, then the whole node."""
    text = str(node.get("text", ""))
    head = {key: node[key] for key in ("id", "type") if key in node}
    size = max(1, -(-len(text) // pieces))
    return [{**head, "text": text[:end]} for end in range(size, len(text), size)] + [node]


class ReplayJudge:
    """The fixture judge: replays each node's recorded verdict, keyed by the node's content."""

    name = "fixture"

    def __init__(self, path: Path, *, simulate_latency: bool = False) -> None:
        self.path = Path(path)
        self.simulate_latency = simulate_latency
        self.verdicts: dict[str, tuple[Verdict, Any]] = {}
        for exchange in load_fixture(self.path).values():
            if exchange.get("verdict") is not None:
                candidate = CandidateNode.of(exchange["node"])
                self.verdicts[candidate.key()] = (exchange["verdict"], exchange.get("verdict_latency_ms"))

    @classmethod
    def from_settings(cls, llm: Any) -> ReplayJudge:
        return cls(fixture_path(llm), simulate_latency=bool(getattr(llm, "replay_latency", False)))

    async def judge(self, node: CandidateNode) -> Verdict:
        found = self.verdicts.get(node.key())
        if found is None:
            raise VerdictNotInRecordingError(
                not_shown(f"The safety judge's verdict on this step is not in the recording {self.path.name}")
            )
        verdict, latency_ms = found
        if self.simulate_latency and latency_ms:
            await asyncio.sleep(float(latency_ms) / 1000)
        return verdict


def _update_fixture(path: Path, change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> None:
    """Rewrite the recording's exchanges through ``change``, atomically (a crash leaves the old file)."""
    data: dict[str, Any] = (
        json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"format": FORMAT, "exchanges": []}
    )
    data["exchanges"] = change(data["exchanges"])
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".fixture-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, ensure_ascii=False)
        handle.write("\n")
    os.replace(tmp, path)


class RecordingGenerator:
    """Wraps a real generator and appends every valid exchange to a fixture file."""

    def __init__(self, inner: NodeGenerator, path: Path) -> None:
        self.inner = inner
        self.path = Path(path)
        self.name = f"recording:{inner.name}"

    async def generate(self, context: NodeContext) -> dict[str, Any]:
        return await self._record(context, None)

    async def stream(self, context: NodeContext, on_partial: PartialListener) -> dict[str, Any]:
        return await self._record(context, on_partial)

    async def _record(self, context: NodeContext, on_partial: PartialListener | None) -> dict[str, Any]:
        started = time.perf_counter()
        raw = await raw_node(self.inner, context, on_partial)
        latency_ms = round((time.perf_counter() - started) * 1000)
        try:
            node = validate_node(raw)
        except InvalidNodeError:
            return raw  # the caller refuses it; a fixture only holds nodes that pass the rules
        record = context_record(context)
        exchange = {
            "key": fixture_key(record),
            "context": record,
            "node": node,
            "model": getattr(self.inner, "model", self.inner.name),
            "usage": getattr(self.inner, "last_usage", None),
            "latency_ms": latency_ms,
        }
        _update_fixture(self.path, lambda old: [e for e in old if e.get("key") != exchange["key"]] + [exchange])
        return raw


class RecordingJudge:
    """Wraps a real judge and writes each verdict into the recorded exchanges of that node."""

    def __init__(self, inner: NodeJudge, path: Path) -> None:
        self.inner = inner
        self.path = Path(path)
        self.name = f"recording:{inner.name}"

    async def judge(self, node: CandidateNode) -> Verdict:
        started = time.perf_counter()
        verdict = await self.inner.judge(node)
        latency_ms = round((time.perf_counter() - started) * 1000)
        key = node.key()

        def attach(exchanges: list[dict[str, Any]]) -> list[dict[str, Any]]:
            for exchange in exchanges:
                if isinstance(exchange.get("node"), dict) and CandidateNode.of(exchange["node"]).key() == key:
                    exchange.update(verdict=verdict.record(), verdict_latency_ms=latency_ms)
            return exchanges

        _update_fixture(self.path, attach)
        return verdict
