"""The AI step's wait, as the tech feels it (results in BENCHMARKS.md, section "AI wait").

The real app (Textual, headless, 130x40) on a temporary SQLite desk walks an AI
build through the real Anthropic SDK against a loopback stand-in for the Messages
API, in its own process on 127.0.0.1. The stand-in writes each node in 2 s: the
first chunk after FIRST_CHUNK_S, the rest of the node's JSON in CHUNKS chunks
evenly up to 2 s. The safety judge is the Anthropic judge against the same
stand-in, which answers a verdict at once (unstreamed). Token counts are the
stand-in's (4 characters a token): input for every request, output for the
characters actually sent (a cancelled prefetch pays only for what it received).

1. Prefetch ready: the tech reads each question for READ_S (longer than the 2 s a
   node takes), then answers; time from the answer key to the next node's buttons.
2. Prefetch off, streaming: time from the stand-in sending the first chunk to the
   first sentence on screen, and from the last chunk to the node validated (both
   layers passed) and to its buttons on screen. One monotonic clock (Linux
   CLOCK_MONOTONIC) is shared by both processes.
3. Tokens for a 6-step walk, with and without prefetch.
4. The deadline: a stalled server, and a 429 with retry-after 90 s then a stall:
   from the answer key to the timeout message, with a 5 s and the default 20 s deadline.

Run: .venv/bin/python bench/bench_ai_wait.py [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.messages_standin import (
    PromptCache,
    message,
    pieces,
    prompt_text,
    stream_events,
    system_text,
    tokens,
    usage_of,
)

NODE_SECONDS = 2.0
FIRST_CHUNK_S = 1.2
CHUNKS = 8
READ_S = 2.6
WALK_STEPS = 6
SIZE = (130, 40)
JUDGE_PREFETCH = [True]  # [llm] judge_prefetch: --judge-on-claim turns it off


# --- the stand-in: an asyncio HTTP/1.1 server in its own process -----------------------------


def node_for(body: dict) -> dict:
    """Step n of a walk (n from the prompt): questions with three sentences, then a resolution."""
    prompt = prompt_text(body)
    step = prompt.count("answer chosen:") + prompt.count("did it and acknowledged") + 1
    if step >= WALK_STEPS:
        text = "Outlook opens again. Confirm with the user and close the ticket."
        return {"id": f"r{step}", "type": "resolution", "text": text, "yes_label": "", "no_label": ""}
    return {
        "id": f"q{step}",
        "type": "question",
        "text": f"Check step {step} on the user's PC. Does Outlook open normally now? If not, note what it shows.",
        "yes_label": "It opens",
        "no_label": "Still fails",
    }


USAGE_FIELDS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


class Server:
    def __init__(self, timeline, cache_minimum: int) -> None:
        self.timeline = timeline  # shared dict: first/last chunk times of the latest node request
        self.cache = PromptCache(cache_minimum)
        self.usage = dict.fromkeys(USAGE_FIELDS, 0)
        self.output_chars = 0  # what was actually sent: a cancelled stream pays only for that

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                path = lines[0].split()[1]
                headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
                body_bytes = await reader.readexactly(int(headers.get("content-length", 0)))
                if path.startswith("/usage"):
                    await self._json(writer, 200, {**self.usage, "output_tokens": tokens("x" * self.output_chars)})
                    continue
                if path.startswith("/reset"):
                    self.usage, self.output_chars = dict.fromkeys(USAGE_FIELDS, 0), 0
                    await self._json(writer, 200, {})
                    continue
                body = json.loads(body_bytes)
                if path.startswith("/stall"):
                    await asyncio.sleep(3600)
                if path.startswith("/ratelimit"):
                    error = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
                    await self._json(writer, 429, error, {"retry-after": "90"})
                    continue
                if "independent safety reviewer" in system_text(body):
                    verdict = json.dumps({"verdict": "safe", "rule": "", "reason": "routine"})
                    self.output_chars += len(verdict)
                    await self._json(writer, 200, message(verdict, self._usage(body, verdict)))
                    continue
                await self._stream(writer, body)
        except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError):
            pass
        finally:
            writer.close()

    def _usage(self, body: dict, text: str) -> dict[str, int]:
        usage = usage_of(body, text, self.cache)
        for name in USAGE_FIELDS:
            self.usage[name] += usage[name]
        return usage

    async def _json(self, writer, status: int, payload: dict, extra: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        head = f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {len(data)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in (extra or {}).items())
        writer.write(head.encode() + b"\r\n" + data)  # one write: no Nagle / delayed-ACK stall
        await writer.drain()

    async def _stream(self, writer, body: dict) -> None:
        text = json.dumps(node_for(body))
        usage = self._usage(body, text)
        start, chunks, tail = stream_events(text, usage, CHUNKS)
        texts = pieces(text, CHUNKS)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        writer.write(_chunked(start))
        await writer.drain()
        began = time.monotonic()
        gap = (NODE_SECONDS - FIRST_CHUNK_S) / max(1, len(chunks) - 1)
        first = last = 0.0
        for index, (chunk, sent) in enumerate(zip(chunks, texts, strict=True)):
            await asyncio.sleep(max(0.0, began + FIRST_CHUNK_S + index * gap - time.monotonic()))
            writer.write(_chunked(chunk))
            await writer.drain()
            last = time.monotonic()
            first = first or last
            self.output_chars += len(sent)
        writer.write(_chunked(tail) + b"0\r\n\r\n")
        await writer.drain()
        self.timeline.update(first=first, last=last)


def _chunked(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _serve(ports, timeline, cache_minimum) -> None:
    async def main() -> None:
        server = Server(timeline, cache_minimum)
        listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        ports.put(listener.sockets[0].getsockname()[1])
        await listener.serve_forever()

    asyncio.run(main())


def standin(cache_minimum: int) -> tuple[multiprocessing.Process, int, dict]:
    manager = multiprocessing.Manager()
    timeline = manager.dict()
    ports: multiprocessing.Queue = multiprocessing.Queue()
    process = multiprocessing.Process(target=_serve, args=(ports, timeline, cache_minimum), daemon=True)
    process.start()
    return process, ports.get(timeout=30), timeline


async def server_call(port: int, path: str) -> dict:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n".encode())
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")
    data = await reader.read(4096)
    writer.close()
    return json.loads(data or b"{}")


# --- the app ---------------------------------------------------------------------------------


async def new_desk() -> tuple[str, str]:
    from rflow_tui.db import open_store
    from rflow_tui.services.demo import seed_demo

    folder = Path(tempfile.mkdtemp(prefix="rflow-bench-wait-"))
    url = f"sqlite+aiosqlite:///{folder / 'bench.sqlite3'}"
    engine, open_db = await open_store(url)
    async with open_db() as db:
        desk = await seed_demo(db)
    await engine.dispose()
    return url, desk.tech.email


class FirstStep:
    """Serves the walk's first question at set-up, so every measured step is an answer."""

    name = "first-step"

    async def generate(self, context) -> dict:
        return node_for({"messages": []})


async def start_walk(url: str, email: str, ticket_id: str) -> None:
    from rflow_tui.db import open_store
    from rflow_tui.services.users import find_login
    from rflow_tui.services.walks import ai_steps
    from rflow_tui.services.walks import start as walk_start

    engine, open_db = await open_store(url)
    async with open_db() as db:
        tech = await find_login(db, email)
        walk = await walk_start.start_ai_build_session(
            db, actor=tech, ticket_id=ticket_id, category="email", problem_text="Outlook will not open"
        )
        await ai_steps.advance_ai_build(db, actor=tech, session_id=walk.id, generator=FirstStep(), judge=None)
    await engine.dispose()


def make_app(url: str, email: str, port: int, *, prefetch: bool, path: str = "", deadline: float = 20.0):
    from rflow_tui.config import LLMSettings, Settings
    from rflow_tui.tui.app import RflowApp

    llm = LLMSettings(
        generator="anthropic",
        api_key="sk-bench",
        base_url=f"http://127.0.0.1:{port}{path}",
        judge="anthropic",
        prefetch=prefetch,
        judge_prefetch=JUDGE_PREFETCH[0],
        step_deadline_seconds=deadline,
    )
    return RflowApp(Settings(database_url=url, user=email, llm=llm))


async def until(predicate, timeout: float = 60.0, every: float = 0.002) -> float:
    """Poll (every 2 ms) until ``predicate()``; the moment it held (monotonic)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if predicate():
                return time.monotonic()
        except Exception:
            pass
        await asyncio.sleep(every)
    raise TimeoutError("the app never got there")


async def press_until(pilot, key: str, predicate) -> tuple[float, float]:
    """Press ``key`` and poll for ``predicate`` at once: (pressed, held) moments. Polling runs
    beside the press, because Pilot's press returns only once the app is idle, which
    includes the next step's prefetch starting after the buttons are already up."""
    pressed = time.monotonic()
    press = asyncio.ensure_future(pilot.press(key))
    held = await until(predicate)
    await press
    return pressed, held


def buttons_for(app, node_id: str):
    def ready() -> bool:
        screen = app.screen
        return (
            screen.node is not None
            and screen.node["id"] == node_id
            and not screen.busy
            and bool(screen.query("#answer-yes") or screen.query("#do-resolve"))
        )

    return ready


async def open_walk(app, pilot) -> None:
    await until(lambda: app.screen.__class__.__name__ == "ResumeDialog" and app.screen.active)
    await pilot.press("enter")
    await until(buttons_for(app, "q1"))


async def walk_with_reading(url, email, port, *, prefetch: bool, read_s: float, ticket: str = "T-1001") -> dict:
    """One whole walk; per answer: the wait from the key to the next node's buttons."""
    await start_walk(url, email, ticket)
    await server_call(port, "/reset")
    app = make_app(url, email, port, prefetch=prefetch)
    waits = []
    async with app.run_test(size=SIZE) as pilot:
        await open_walk(app, pilot)
        for step in range(2, WALK_STEPS + 1):
            await asyncio.sleep(read_s)
            node_id = f"r{step}" if step >= WALK_STEPS else f"q{step}"
            pressed, shown = await press_until(pilot, "1", buttons_for(app, node_id))
            waits.append((shown - pressed) * 1000)
        await asyncio.sleep(0.5)
        walk_id = app.screen.walk.id
    usage = await server_call(port, "/usage")
    return {"waits": waits, "usage": usage, "counted": await counted_tokens(url, email, walk_id)}


async def counted_tokens(url: str, email: str, walk_id: int) -> dict:
    """The walk's tokens as rflow counted them from the API's usage (its JSON export)."""
    from rflow_tui.db import open_store
    from rflow_tui.services.users import find_login
    from rflow_tui.services.walks.reads import read_transcript

    engine, open_db = await open_store(url)
    async with open_db() as db:
        transcript = await read_transcript(db, actor=await find_login(db, email), session_id=walk_id)
    await engine.dispose()
    return transcript["ai_tokens"]


async def streaming_round(url, email, port, timeline, ticket: str = "T-1001") -> list[dict]:
    """Prefetch off: per step, first chunk -> first sentence, last chunk -> validated / buttons."""
    from rflow_tui.ai import generate

    await start_walk(url, email, ticket)
    app = make_app(url, email, port, prefetch=False)
    validated: list[float] = []
    original = generate.checked_node

    async def timed_checked_node(*args, **kwargs):
        result = await original(*args, **kwargs)
        validated.append(time.monotonic())
        return result

    rows = []
    async with app.run_test(size=SIZE) as pilot:
        await open_walk(app, pilot)
        generate.checked_node = timed_checked_node
        try:
            for step in range(2, WALK_STEPS):
                first_text: list[float] = []
                card = app.screen.card
                shown = card.preview

                def watched(kind, text, shown=shown, first_text=first_text):
                    if text and not first_text:
                        first_text.append(time.monotonic())
                    shown(kind, text)

                card.preview = watched
                _, done = await press_until(pilot, "1", buttons_for(app, f"q{step}"))
                card.preview = shown
                rows.append(
                    {
                        "first_sentence_ms": (first_text[0] - timeline["first"]) * 1000,
                        "validated_ms": (validated[-1] - timeline["last"]) * 1000,
                        "buttons_ms": (done - timeline["last"]) * 1000,
                    }
                )
        finally:
            generate.checked_node = original
    return rows


async def deadline_round(url, email, port, *, path: str, deadline: float, ticket: str = "T-1001") -> float:
    await start_walk(url, email, ticket)
    app = make_app(url, email, port, prefetch=False, path=path, deadline=deadline)
    async with app.run_test(size=SIZE) as pilot:
        await open_walk(app, pilot)
        timed_out = lambda: "took too long" in str(app.screen.query_one("#walk-error").render())  # noqa: E731
        pressed, shown = await press_until(pilot, "1", timed_out)
    return shown - pressed


PICKER_RACES = []


async def again_on_picker_race(make_run):
    """Run ``make_run()``; once more if the picker under the walk raced itself at start
    (DuplicateKey from two page loads: a known picker bug, not the AI step). Counted."""
    from textual.worker import WorkerFailed

    for _ in range(3):
        try:
            return await make_run()
        except WorkerFailed as failed:
            if "DuplicateKey" not in str(failed):
                raise
            PICKER_RACES.append(1)
    raise RuntimeError("the picker raced itself three times in a row")


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"median {statistics.median(values):.0f} ms, p95 {p95:.0f} ms, max {max(values):.0f} ms (n={len(values)})"


EMPTY = dict.fromkeys(USAGE_FIELDS, 0)


def billed(row: dict) -> float:
    """Input as billed, in uncached tokens: a cache write costs 1.25x, a cache read 0.1x."""
    return row["input_tokens"] + 1.25 * row["cache_creation_input_tokens"] + 0.1 * row["cache_read_input_tokens"]


def token_lines(label: str, counted: list[dict]) -> None:
    def median(role: str, name: str) -> float:
        return statistics.median(c.get(role, {}).get(name, 0) for c in counted)

    for role in ("generator", "judge", "all"):
        print(
            f"  {label}, {role}: calls {median(role, 'calls'):.0f}, input {median(role, 'input_tokens'):.0f}, "
            f"cache write {median(role, 'cache_creation_input_tokens'):.0f}, "
            f"cache read {median(role, 'cache_read_input_tokens'):.0f}, output {median(role, 'output_tokens'):.0f}, "
            f"input as billed {statistics.median(billed(c.get(role) or EMPTY) for c in counted):.0f}"
        )


async def main(rounds: int, cache_minimum: int, walks_only: bool) -> None:
    process, port, timeline = standin(cache_minimum)

    ready, plain, tokens_on, tokens_off, counted_on, counted_off = [], [], [], [], [], []
    for _ in range(rounds):  # the set-ups take turns, so load drifts hit both alike
        on = await again_on_picker_race(lambda: walk_with_reading_on_a_new_desk(port, prefetch=True, read_s=READ_S))
        ready += on["waits"]
        tokens_on.append(on["usage"])
        counted_on.append(on["counted"])
        off = await again_on_picker_race(lambda: walk_with_reading_on_a_new_desk(port, prefetch=False, read_s=READ_S))
        plain += off["waits"]
        tokens_off.append(off["usage"])
        counted_off.append(off["counted"])
    print(f"answer key -> next buttons, prefetch ready (read {READ_S} s): {summary(ready)}")
    print(f"answer key -> next buttons, prefetch off: {summary(plain)}")
    for label, usage in (("with prefetch", tokens_on), ("without prefetch", tokens_off)):
        inputs = statistics.median(u["input_tokens"] for u in usage)
        outputs = statistics.median(u["output_tokens"] for u in usage)
        print(
            f"tokens per {WALK_STEPS}-step walk {label}: input {inputs:.0f}, output {outputs:.0f}, "
            f"total {inputs + outputs:.0f} (median of {len(usage)}; the stand-in's count, judge included)"
        )
    print(f"tokens per walk as rflow counted them from the API's usage (cache minimum {cache_minimum} tokens):")
    token_lines("with prefetch", counted_on)
    token_lines("without prefetch", counted_off)
    if walks_only:
        process.terminate()
        return

    rows = []
    for _ in range(rounds):
        rows += await again_on_picker_race(lambda: streaming_on_a_new_desk(port, timeline))
    print(f"first chunk -> first sentence on screen: {summary([r['first_sentence_ms'] for r in rows])}")
    print(f"last chunk -> node validated (both layers): {summary([r['validated_ms'] for r in rows])}")
    print(f"last chunk -> buttons on screen: {summary([r['buttons_ms'] for r in rows])}")

    for path, label in (("/stall", "stalled server"), ("/ratelimit", "429 retry-after: 90")):
        for deadline, runs in ((5.0, 3), (20.0, 1)):
            seconds = [
                await again_on_picker_race(
                    lambda path=path, deadline=deadline: deadline_on_a_new_desk(port, path=path, deadline=deadline)
                )
                for _ in range(runs)
            ]
            shown = ", ".join(f"{s:.2f} s" for s in seconds)
            print(f"{label}, deadline {deadline:g} s: timeout message after {shown}")
    print(f"runs repeated because the picker raced itself at start: {len(PICKER_RACES)}")
    process.terminate()


async def walk_with_reading_on_a_new_desk(port, **kwargs) -> dict:
    return await walk_with_reading(*await new_desk(), port, **kwargs)


async def streaming_on_a_new_desk(port, timeline) -> list[dict]:
    return await streaming_round(*await new_desk(), port, timeline)


async def deadline_on_a_new_desk(port, **kwargs) -> float:
    return await deadline_round(*await new_desk(), port, **kwargs)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--cache-minimum", type=int, default=1024, help="the stand-in's minimum cacheable prefix, in tokens"
    )
    parser.add_argument("--walks-only", action="store_true", help="only the prefetch walks and their tokens")
    parser.add_argument("--judge-on-claim", action="store_true", help="[llm] judge_prefetch = false")
    args = parser.parse_args()
    JUDGE_PREFETCH[0] = not args.judge_on_claim
    asyncio.run(main(args.rounds, args.cache_minimum, args.walks_only))
