"""The HTTP layer both adapters share: timeouts, 429/Retry-After, a cap on concurrent calls per endpoint.

Reads are retried here (a GET twice harms nothing); writes are not: a write that may
have reached the server raises with ``unclear=True`` and the outbox decides, after
looking for its marker, whether to send it again. A 429 is retried for writes too,
since the server refused it before doing anything.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from rflow_tui.psa.base import (
    PsaAuthError,
    PsaError,
    PsaNotFound,
    PsaRateLimited,
    PsaRejected,
    PsaUnavailable,
)

SAFE_METHODS = frozenset({"GET", "HEAD"})


def retry_after_seconds(value: str | None, default: float = 1.0) -> float:
    """Retry-After as seconds: a number of seconds or an HTTP date (RFC 9110); ``default`` if absent or odd."""
    if not value:
        return default
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class PsaHttp:
    """An ``httpx.AsyncClient`` for one PSA base URL.

    ``max_concurrency`` calls at most per endpoint (the first path segment after the
    base, e.g. ``service``, ``tickets``): vendors rate-limit per endpoint, and a drain
    of a thousand notes must not open a thousand sockets. ``max_retry_wait`` caps how
    long one call sleeps on Retry-After before giving the 429 to the caller.
    """

    def __init__(
        self,
        base_url: str,
        *,
        system: str,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float = 15.0,
        max_concurrency: int = 4,
        read_retries: int = 3,
        max_retry_wait: float = 30.0,
        backoff: float = 0.5,
    ) -> None:
        self.system = system
        self.client = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/",
            headers=dict(headers or {}),
            auth=httpx.BasicAuth(*auth) if auth else None,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            follow_redirects=False,
        )
        self.max_concurrency = max_concurrency
        self.read_retries = read_retries
        self.max_retry_wait = max_retry_wait
        self.backoff = backoff
        self.requests_made = 0
        self._gates: dict[str, asyncio.Semaphore] = {}

    def _gate(self, path: str) -> asyncio.Semaphore:
        endpoint = path.strip("/").split("/", 1)[0].split("?", 1)[0]
        gate = self._gates.get(endpoint)
        if gate is None:
            gate = self._gates[endpoint] = asyncio.Semaphore(self.max_concurrency)
        return gate

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The response of a 2xx; every other outcome as a PsaError (see the module's docstring)."""
        safe = method in SAFE_METHODS
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self._gate(path):
                    self.requests_made += 1
                    response = await self.client.request(method, path.lstrip("/"), **kwargs)
            except httpx.TimeoutException as exc:
                # A connect timeout never reached the server; any other may have.
                error: PsaError = PsaUnavailable(
                    f"{self.system} did not answer in time ({type(exc).__name__})",
                    unclear=not isinstance(exc, httpx.ConnectTimeout),
                )
            except httpx.TransportError as exc:
                sent = not isinstance(exc, httpx.ConnectError)
                error = PsaUnavailable(f"cannot reach {self.system} ({type(exc).__name__}: {exc})", unclear=sent)
            else:
                if response.is_success:
                    return response
                error = self._error(response, write=not safe)
            if isinstance(error, PsaRateLimited):
                if error.retry_after > self.max_retry_wait or attempt > self.read_retries:
                    raise error
                await asyncio.sleep(error.retry_after)
                continue
            if safe and error.retryable and attempt <= self.read_retries:
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1) * (0.5 + random.random()))
                continue
            raise error

    def _error(self, response: httpx.Response, *, write: bool) -> PsaError:
        code = response.status_code
        said = _said(response)
        where = f"{self.system} answered {code} to {response.request.method} {response.request.url.path}"
        if code in (401, 403):
            return PsaAuthError(f"{where}: check the keys and their rights{said}")
        if code == 404:
            return PsaNotFound(f"{where}: not found (deleted upstream?){said}")
        if code == 429:
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            return PsaRateLimited(f"{where}: rate limited, retry after {wait:g} s", retry_after=wait)
        if code >= 500:
            return PsaUnavailable(f"{where}{said}", unclear=write)
        return PsaRejected(f"{where}{said}")

    async def aclose(self) -> None:
        await self.client.aclose()


class HttpAdapter:
    """What every adapter over ``PsaHttp`` shares: its client, the requests it made, closing it."""

    http: PsaHttp

    @property
    def requests_made(self) -> int:
        return self.http.requests_made

    async def aclose(self) -> None:
        await self.http.aclose()


def shared_options(settings: Any) -> dict[str, Any]:
    """The ``[psa]`` settings every adapter takes the same way."""
    return {
        "board": settings.board,
        "note_visibility": settings.note_visibility,
        "timeout": settings.timeout_seconds,
        "max_concurrency": settings.max_concurrency,
    }


def _said(response: httpx.Response) -> str:
    """A short, single-line extract of the server's own message (never markup downstream: plain text)."""
    try:
        body = response.json()
    except ValueError:
        text = response.text
    else:
        text = ""
        if isinstance(body, dict):
            for key in ("message", "error", "description", "code"):
                value = body.get(key)
                if isinstance(value, str) and value:
                    text = value
                    break
                if isinstance(value, dict) and isinstance(value.get("message"), str):
                    text = value["message"]
                    break
    text = " ".join(text.split())[:200]
    return f" ({text})" if text else ""
