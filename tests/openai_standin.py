"""A stand-in for an OpenAI-compatible Chat Completions server (OpenAI, Azure, Ollama, vLLM,
llama.cpp, LM Studio): what the real ``openai`` SDK talks to in tests.

It answers as such a server does: a whole ``chat.completion``, or (for ``stream: true``)
server-sent ``chat.completion.chunk`` events with the answer cut into chunks, each
after a delay, a usage chunk when ``stream_options.include_usage`` asks for one, then
``[DONE]``. Replies are scripted per request, as in the Messages stand-in: a node or
verdict (a dict, sent as JSON), raw text, ``Finish`` (text that stops for another
reason), ``Refuse``, ``Stall``, ``Status`` (an HTTP error with headers such as
retry-after), or a function of the request body. ``StandIn`` is the handler of an
``httpx2.MockTransport``; ``client()`` builds the SDK's client on it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from tests.messages_standin import Stall, Status, pieces, tokens

__all__ = ["Finish", "Refuse", "Stall", "StandIn", "Status"]

BASE_URL = "http://127.0.0.1:11434/v1"  # where Ollama listens; the transport never opens a socket


@dataclass
class Finish:
    """``text``, stopped for ``reason`` ("length", "content_filter")."""

    text: str
    reason: str


@dataclass
class Refuse:
    """The model refuses (the ``refusal`` field, not the content)."""

    text: str = "I can't help with that."


Reply = dict | str | Finish | Refuse | Stall | Status | Callable[[dict], Any]


def prompt_text(body: dict) -> str:
    return "\n".join(str(message.get("content") or "") for message in body.get("messages", []))


def usage_of(body: dict, text: str) -> dict[str, int]:
    prompt, completion = tokens(prompt_text(body)), tokens(text)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _chunk(model: str, delta: dict, finish_reason: str | None = None) -> dict:
    return {
        "id": "chatcmpl-standin",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def _sse(data: dict | str) -> bytes:
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n".encode()


class StandIn:
    """Scripted replies, used in order, the last one for every request after it."""

    def __init__(
        self,
        *replies: Reply,
        chunks: int = 6,
        first_chunk_delay: float = 0.0,
        chunk_delay: float = 0.0,
        cached_tokens: int = 0,
    ) -> None:
        self.replies = list(replies)
        self.cached_tokens = cached_tokens  # reported as prompt_tokens_details.cached_tokens
        self.prompt_tokens = 0  # summed over every answered request
        self.chunks = chunks
        self.first_chunk_delay = first_chunk_delay
        self.chunk_delay = chunk_delay
        self.requests: list[dict] = []
        self.headers: list[dict[str, str]] = []
        self.in_flight = 0
        self.most_in_flight = 0

    def client(self, api_key: str = "sk-standin") -> Any:
        import httpx2
        from openai import AsyncOpenAI

        transport = httpx2.MockTransport(self)
        return AsyncOpenAI(
            api_key=api_key, base_url=BASE_URL, max_retries=0, http_client=httpx2.AsyncClient(transport=transport)
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
        self.headers.append(dict(request.headers))
        reply = self._next(body)
        if isinstance(reply, Stall):
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                await asyncio.sleep(reply.seconds)
            finally:
                self.in_flight -= 1
            raise httpx2.ReadTimeout("the stand-in stalled", request=request)
        if isinstance(reply, Status):
            error = {"error": {"message": "stand-in says no", "type": "error", "param": None, "code": None}}
            return httpx2.Response(reply.code, headers=reply.headers, json=error)
        text, reason, refusal = "", "stop", None
        if isinstance(reply, Finish):
            text, reason = reply.text, reply.reason
        elif isinstance(reply, Refuse):
            refusal = reply.text
        else:
            text = reply if isinstance(reply, str) else json.dumps(reply)
        model = body.get("model", "")
        usage = usage_of(body, text or refusal or "")
        if self.cached_tokens:
            usage["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
        self.prompt_tokens += usage["prompt_tokens"]
        if not body.get("stream"):
            message = {"role": "assistant", "content": text or None, "refusal": refusal}
            completion = {
                "id": "chatcmpl-standin",
                "object": "chat.completion",
                "created": 1,
                "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": reason, "logprobs": None}],
                "usage": usage,
            }
            return httpx2.Response(200, json=completion)
        with_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        events = self._stream(model, text, refusal, reason, usage if with_usage else None)
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=events)

    async def _stream(
        self, model: str, text: str, refusal: str | None, reason: str, usage: dict | None
    ) -> AsyncIterator[bytes]:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            yield _sse(_chunk(model, {"role": "assistant", "content": ""}))
            deltas = [{"refusal": refusal}] if refusal else [{"content": piece} for piece in pieces(text, self.chunks)]
            for index, delta in enumerate(deltas):
                await asyncio.sleep(self.first_chunk_delay if index == 0 else self.chunk_delay)
                yield _sse(_chunk(model, delta))
            yield _sse(_chunk(model, {}, reason))
            if usage is not None:
                yield _sse({**_chunk(model, {}), "choices": [], "usage": usage})
            yield _sse("[DONE]")
        finally:
            self.in_flight -= 1
