"""The one place where a screen's workers meet a failing store.

Textual closes the app when a worker raises. A refusal (ServiceError) or a
failure of the store itself (connection lost, lock held too long, a constraint,
a value the database will not take) must not do that: the screen says so and
stays, with everything typed still in its fields and drafts. The store's pool
reconnects on the next call, so "try again" is all the user has to do.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from textual.css.query import NoMatches

from rflow_tui.db import store_error
from rflow_tui.services.errors import ServiceError


class StoreGuard:
    """Mixin for screens (and the app): every async worker they start reports, never exits.

    Override ``store_failed`` to show the message somewhere better than a toast. A worker
    whose screen was closed while it awaited the store drops what it fetched.
    """

    def run_worker(self, work: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("thread"):
            return super().run_worker(work, *args, **kwargs)  # type: ignore[misc]
        return super().run_worker(partial(self._guarded, work), *args, **kwargs)  # type: ignore[misc]

    async def _guarded(self, work: Any) -> Any:
        try:
            result = work() if callable(work) else work
            return await result if hasattr(result, "__await__") else result
        except NoMatches:
            return self._closed_meanwhile()
        except Exception as exc:
            error = exc if isinstance(exc, ServiceError) else store_error(exc)
            if error is None:
                raise
            try:
                self.store_failed(error)
            except NoMatches:  # the refusal closed the screen (rights revoked) before it could say so
                return self._closed_meanwhile()
            return None

    def _closed_meanwhile(self) -> None:
        """A widget gone from a screen that is still shown is a bug; from a closing one, nothing to do."""
        if getattr(self, "is_current", True) and self.is_running:  # type: ignore[attr-defined]
            raise
        return None  # the screen closed while the worker awaited the store: nothing to show it on

    def store_failed(self, error: ServiceError) -> None:
        self.notify(str(error), severity="error", timeout=8, markup=False)  # type: ignore[attr-defined]
