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

    @staticmethod
    def sdk_client(*, api_key: str, base_url: str | None, timeout: float) -> Any:
        """Subclasses: their SDK's client (``anthropic_client`` / ``openai_client.sdk_client``)."""
        raise NotImplementedError

    def client(self) -> Any:
        """The SDK client, built (and the SDK imported) on first use, never at app start."""
        if self._client is None:
            self._client = self.sdk_client(api_key=self.api_key, base_url=self.base_url, timeout=self.timeout)
        return self._client

    def warm_up(self) -> None:
        """Import the SDK and build the client now: the app runs this in a worker thread while
        the tech reads the start dialog, so the first step does not wait seconds for the import."""
        self.client()
