"""A stand-in for Anthropic's Messages API: what the real SDK talks to in tests and benchmarks.

It answers the SDK's requests as the service would: a whole message, or (for
``stream: true``) server-sent events with the node's JSON cut into chunks, each
chunk after a delay. Replies are scripted per request: a node, a ``Stall``, a
``Status`` error (with headers such as retry-after), or a function of the request.
Token usage is the stand-in's own estimate (4 characters a token), summed over
every request, so a benchmark can compare walks.

The same event builder serves an ``httpx2.MockTransport`` (tests: ``StandIn`` is
the handler) and a loopback HTTP server (``bench/bench_ai_wait.py``).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Stall:
    """Hold the request this long (the SDK's or the step's timeout ends it first)."""

    seconds: float = 3600.0


@dataclass
class Status:
    """An HTTP error, e.g. ``Status(429, {"retry-after": "90"})``."""

    code: int
    headers: dict[str, str] = field(default_factory=dict)


Reply = dict | Stall | Status | Callable[[dict], Any]


def tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def blocks(body: dict) -> list[dict]:
    """The request's text blocks in the order the model reads them: the system prompt, then
    each message's content (a plain string is one block)."""
    found: list[dict] = []
    for content in [body.get("system") or "", *(m.get("content") for m in body.get("messages", []))]:
        if isinstance(content, str):
            found.append({"type": "text", "text": content})
        else:
            found += [b if b.get("type") == "text" else {"text": json.dumps(b)} for b in content or []]
    return found


def prompt_text(body: dict) -> str:
    """The system prompt and every message's text, as the model would read them."""
    return "\n".join(block.get("text", "") for block in blocks(body))


def user_text(body: dict) -> str:
    """The messages' text alone (no system prompt)."""
    return prompt_text({"messages": body.get("messages", [])})


def system_text(body: dict) -> str:
    system = body.get("system") or ""
    return system if isinstance(system, str) else "\n".join(b.get("text", "") for b in system)


def breakpoints(body: dict) -> list[str]:
    """The prompt up to each ``cache_control`` mark, shortest first."""
    texts, marks = [], []
    for block in blocks(body):
        texts.append(block.get("text", ""))
        if block.get("cache_control"):
            marks.append("\n".join(texts))
    return marks


class PromptCache:
    """Prompt caching as the Messages API describes it: a prefix up to a ``cache_control``
    mark, at least ``minimum`` tokens long, is written on first use (``cache_creation``) and
    read when a later request repeats it (``cache_read``); the rest is ``input_tokens``."""

    def __init__(self, minimum: int = 1024) -> None:
        self.minimum = minimum
        self.prefixes: set[str] = set()

    def usage(self, body: dict, text: str) -> dict[str, int]:
        whole = tokens(prompt_text(body))
        read = created = 0
        marks = [mark for mark in breakpoints(body) if tokens(mark) >= self.minimum]
        hit = next((mark for mark in reversed(marks) if mark in self.prefixes), None)
        if hit is not None:
            read = tokens(hit)
        if marks and marks[-1] not in self.prefixes:
            created = tokens(marks[-1]) - read
            self.prefixes.add(marks[-1])
        return {
            "input_tokens": whole - read - created,
            "output_tokens": tokens(text),
            "cache_creation_input_tokens": created,
            "cache_read_input_tokens": read,
        }


def usage_of(body: dict, text: str, cache: PromptCache | None = None) -> dict[str, int]:
    if cache is not None:
        return cache.usage(body, text)
    return {"input_tokens": tokens(prompt_text(body)), "output_tokens": tokens(text)}


def message(text: str, usage: dict[str, int], model: str = "claude-haiku-5-5") -> dict:
    return {
        "id": "msg_standin",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }


def _event(kind: str, data: dict) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()


def pieces(text: str, chunks: int) -> list[str]:
    """``text`` cut into ``chunks`` nearly equal pieces (fewer if it is shorter)."""
    size = max(1, math.ceil(len(text) / max(1, chunks)))
    return [text[i : i + size] for i in range(0, len(text), size)]


def stream_events(
    text: str, usage: dict[str, int], chunks: int, stop_reason: str = "end_turn"
) -> tuple[bytes, list[bytes], bytes]:
    """(the opening events, one event per chunk of ``text``, the closing events)."""
    start = {**message("", {**usage, "output_tokens": 1}), "stop_reason": None}
    start["content"] = []
    head = _event("message_start", {"type": "message_start", "message": start}) + _event(
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    )
    body = [
        _event(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
        )
        for piece in pieces(text, chunks)
    ]
    tail = (
        _event("content_block_stop", {"type": "content_block_stop", "index": 0})
        + _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        )
        + _event("message_stop", {"type": "message_stop"})
    )
    return head, body, tail


def answer_chosen(body: dict) -> str | None:
    """The label of the last answer in the prompt (``answer chosen: "..."``), or None on the first step."""
    text = prompt_text(body)
    marker = 'answer chosen: "'
    at = text.rfind(marker)
    if at < 0:
        return None
    return text[at + len(marker) : text.index('"', at + len(marker))]


class StandIn:
    """The handler of an ``httpx2.MockTransport``: scripted replies, streamed in timed chunks.

    ``replies`` are used in order, the last one for every request after it.
    ``first_chunk_delay`` is the wait before the first chunk, ``chunk_delay`` the wait
    before each later one.
    """

    def __init__(
        self,
        *replies: Reply,
        chunks: int = 6,
        first_chunk_delay: float = 0.0,
        chunk_delay: float = 0.0,
        cache: PromptCache | None = None,
    ) -> None:
        self.replies = list(replies)
        self.cache = cache
        self.closed_early = 0  # streams the client closed before their last chunk
        self.chunks = chunks
        self.first_chunk_delay = first_chunk_delay
        self.chunk_delay = chunk_delay
        self.requests: list[dict] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.usage: dict[str, int] = {}

    def client(self) -> Any:
        import httpx2
        from anthropic import AsyncAnthropic

        return AsyncAnthropic(
            api_key="sk-standin", max_retries=0, http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(self))
        )

    def _next(self, body: dict) -> Any:
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        while callable(reply):
            reply = reply(body)
        return reply

    async def __call__(self, request: Any) -> Any:
        import httpx2

        body = json.loads(request.content)
        self.requests.append(body)
        reply = self._next(body)
        if isinstance(reply, Stall):
            self._enter()
            try:
                await asyncio.sleep(reply.seconds)
            finally:
                self._leave()
            raise httpx2.ReadTimeout("the stand-in stalled", request=request)
        if isinstance(reply, Status):
            error = {"type": "error", "error": {"type": "rate_limit_error", "message": "stand-in says no"}}
            return httpx2.Response(reply.code, headers=reply.headers, json=error)
        text = reply if isinstance(reply, str) else json.dumps(reply)
        usage = usage_of(body, text, self.cache)
        self.usage = {key: self.usage.get(key, 0) + usage[key] for key in usage}
        if not body.get("stream"):
            return httpx2.Response(200, json=message(text, usage))
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=self._stream(text, usage))

    def _enter(self) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)

    def _leave(self) -> None:
        self.in_flight -= 1

    async def _stream(self, text: str, usage: dict[str, int]) -> AsyncIterator[bytes]:
        head, body, tail = stream_events(text, usage, self.chunks)
        self._enter()
        finished = False
        try:
            yield head
            for index, chunk in enumerate(body):
                await asyncio.sleep(self.first_chunk_delay if index == 0 else self.chunk_delay)
                yield chunk
            yield tail
            finished = True
        finally:
            self.closed_early += not finished
            self._leave()
