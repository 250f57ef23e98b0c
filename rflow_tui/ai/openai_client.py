"""What the OpenAI-compatible generator and judge share: the SDK client, the request's
structured-output form (and its fallback), which failures a retry may help, how a
failure is named, and how an answer's JSON is read.

One client speaks to OpenAI, Azure OpenAI (its v1 API: ``base_url`` ending ``/openai/v1/``)
and the private servers that copy the Chat Completions API: Ollama, vLLM, llama.cpp's
server, LM Studio. ``openai`` is imported on first use, never at app start.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from rflow_tui.ai import retry

T = TypeVar("T")

KEY_ENV = "RFLOW_OPENAI_API_KEY"
URL_ENV = "RFLOW_OPENAI_BASE_URL"
NO_KEY = "no-key"  # sent as the bearer to a private server that needs none (the SDK insists on one)

# How the answer's shape is asked for. ``json_schema``: the server enforces the schema
# (OpenAI, Azure, vLLM, Ollama, llama.cpp, LM Studio). ``prompt``: for a server that
# refuses that request (HTTP 400/422), the schema is spelled out in the system prompt
# instead; ``ai.validate`` checks the answer either way.
JSON_SCHEMA = "json_schema"
PROMPT = "prompt"
FALLBACK_STATUSES = (400, 422)


def connection(llm: Any) -> tuple[str, str | None]:
    """(the key, the server) from ``[llm] api_key`` and ``base_url``, else from
    ``RFLOW_OPENAI_API_KEY`` and ``RFLOW_OPENAI_BASE_URL`` (always those when the generator
    is another service's: ``registry.own_connection``). No key: a private server that
    needs none; no server: OpenAI's own API. ValueError for a server that is not http(s)."""
    from rflow_tui.ai.registry import own_connection

    key, url = own_connection(llm, "openai")
    key, url = key or os.environ.get(KEY_ENV, ""), url or os.environ.get(URL_ENV, "")
    if url and not url.startswith(("http://", "https://")):
        raise ValueError(f"`base_url` under [llm] (or {URL_ENV}) must be an http(s) URL, got {url!r}")
    return key, url or None


def sdk_client(*, api_key: str, base_url: str | None, timeout: float) -> Any:
    """An AsyncOpenAI client; the SDK is imported here, on first use, never at app start.

    The SDK's own retries are off (it would obey any retry-after while a tech waits):
    ``within_deadline`` retries instead, inside the step's deadline. The key is always
    passed, so the SDK never falls back to ``OPENAI_API_KEY`` behind the desk's back.
    """
    from openai import AsyncOpenAI

    return AsyncOpenAI(api_key=api_key or NO_KEY, base_url=base_url, timeout=timeout, max_retries=0)


async def within_deadline(request: Callable[[float], Awaitable[T]], *, timeout: float, max_retries: int) -> T:
    """``ai.retry.within_deadline`` with the OpenAI SDK's idea of a retryable failure."""
    return await retry.within_deadline(request, timeout=timeout, max_retries=max_retries, retry_wait=retry_wait)


class Shaped(Protocol):
    mode: str  # JSON_SCHEMA or PROMPT


async def structured(owner: Shaped, request: Callable[[float], Awaitable[T]], *, timeout: float, max_retries: int) -> T:
    """``within_deadline(request)``; if the server refuses the ``json_schema`` form (400/422),
    ``owner.mode`` turns to PROMPT, for this call and every later one, and it is asked
    once more (``request`` reads ``owner.mode``), inside the same deadline."""
    try:
        return await within_deadline(request, timeout=timeout, max_retries=max_retries)
    except Exception as exc:
        if owner.mode != JSON_SCHEMA or not refuses_structured_output(exc):
            raise
    owner.mode = PROMPT
    return await within_deadline(request, timeout=timeout, max_retries=max_retries)


def retry_wait(exc: Exception, attempt: int) -> float | None:
    import openai

    return retry.status_retry_wait(
        exc, attempt, connection_error=openai.APIConnectionError, status_error=openai.APIStatusError
    )


def failure_kind(exc: Exception) -> str | None:
    """How an SDK call failed (timeout, network, auth, unknown_model, rate_limited,
    overloaded, server, status), or None when the exception is not the SDK's.

    A 503 is "overloaded": what Ollama and vLLM answer when their queue is full.
    """
    import openai

    if isinstance(exc, openai.InternalServerError) and exc.status_code in (503, 529):
        return "overloaded"
    return retry.kind_of(
        exc,
        (
            (openai.APITimeoutError, "timeout"),
            (openai.APIConnectionError, "network"),
            (openai.AuthenticationError, "auth"),
            (openai.PermissionDeniedError, "auth"),
            (openai.NotFoundError, "unknown_model"),
            (openai.RateLimitError, "rate_limited"),
            (openai.InternalServerError, "server"),
            (openai.APIStatusError, "status"),
            (openai.APIError, "server"),  # an error event in the middle of a stream (vLLM sends them)
        ),
    )


def refuses_structured_output(exc: Exception) -> bool:
    """The server turned the request down as such (400/422): it may not know ``json_schema``."""
    import openai

    return isinstance(exc, openai.APIStatusError) and exc.status_code in FALLBACK_STATUSES


def request_shape(mode: str, name: str, schema: dict[str, Any], system: str) -> tuple[str, dict[str, Any]]:
    """(the system prompt, the extra request keys) for ``mode``: the schema as a strict
    ``response_format``, or spelled out at the end of the system prompt."""
    if mode == JSON_SCHEMA:
        return system, {"response_format": {"type": "json_schema", "json_schema": _format(name, schema)}}
    spelled = json.dumps(schema, ensure_ascii=False)
    return f"{system}\n\nAnswer with one JSON object only, no other text, matching this JSON schema:\n{spelled}", {}


def _format(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "schema": schema, "strict": True}


_THINKING = re.compile(r"\A\s*<think>.*?(</think>|\Z)", re.DOTALL)


def json_text(text: str, *, whole: bool = True) -> str:
    """The JSON object in a model's answer: a reasoning model's leading ``<think>`` block
    and a Markdown fence around the object (what local models write when nothing
    enforces the schema) are dropped. ``whole``: the answer is complete, so it ends at
    the last ``}``; while it is written it runs to the end."""
    text = _THINKING.sub("", text)
    start = text.find("{")
    if start < 0:
        return text.strip()
    end = text.rfind("}") if whole else -1
    return text[start : end + 1] if end > start else text[start:]


def partial_object(text: str) -> dict[str, Any] | None:
    """The JSON object written so far (its last string cut off), or None before one starts."""
    import jiter

    body = json_text(text, whole=False)
    if not body.startswith("{"):
        return None
    try:
        snapshot = jiter.from_json(body.encode("utf-8"), partial_mode="trailing-strings")
    except ValueError:
        return None
    return snapshot if isinstance(snapshot, dict) else None


def usage_of(usage: Any) -> dict[str, int] | None:
    """Token counts from a completion's ``usage`` (None when the server sent none), in the
    Messages API's terms: ``prompt_tokens`` includes the cached ones, ``input_tokens`` does not
    (OpenAI caches long prompts by itself; no mark is needed or possible)."""
    if usage is None:
        return None
    cached = int(getattr(getattr(usage, "prompt_tokens_details", None), "cached_tokens", None) or 0)
    return {
        "input_tokens": int(usage.prompt_tokens or 0) - cached,
        "output_tokens": int(usage.completion_tokens or 0),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }
