"""What every SDK-backed generator and judge holds: where its model is, how long a call may
take and how often it is retried; the SDK client itself is made on first use."""

from __future__ import annotations

from typing import Any


class ModelCaller:
    """Subclasses name their ``default_model`` and ``default_timeout`` (a judge answers faster)."""

    default_model = ""
    default_timeout = 20.0

    def __init__(
        self,
        *,
        api_key: str = "",
        model: str = "",
        base_url: str | None = None,
        timeout: float | None = None,
        max_retries: int = 1,
        client: Any = None,
    ) -> None:
        self.api_key = api_key
        self.model = model or self.default_model
        self.base_url = base_url or None
        self.timeout = self.default_timeout if timeout is None else timeout
        self.max_retries = max_retries
        self._client = client
        self.last_usage: dict[str, int] | None = None
        self.last_latency_ms: int | None = None
