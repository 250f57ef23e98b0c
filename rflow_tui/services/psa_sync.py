"""What the running app does for the PSA: deliver what walks owe their tickets, and pull the
board's changes on start, without a tech ever running ``rflow psa push``.

One pass is ``sync``; the app runs it in a worker (never on the UI's path) after each walk
ends and on a timer, for retries. Delivery is the outbox's (``psa_delivery.drain``): each
item is leased, so two techs' apps, or an app and a cron ``rflow psa push``, never post a
note twice. What went wrong is returned in words, for the tech to be told once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rflow_tui.models import User
from rflow_tui.psa.base import PsaAdapter, PsaError, PsaRateLimited
from rflow_tui.psa.registry import NoPsaConfigured, make_adapter
from rflow_tui.services import psa_pull
from rflow_tui.services.outbox import OpenDb, keep_delivering
from rflow_tui.services.psa_delivery import drain_as_configured
from rflow_tui.services.psa_outbox import Drained

Tell = Callable[[str], None]


@dataclass(frozen=True)
class Synced:
    """One pass: what was delivered, what failed for good, and a pull's summary if one ran."""

    drained: Drained
    pulled: str = ""
    problem: str = ""  # the PSA's refusal, in words (a pull that failed), else ""
    wait_seconds: float = 0.0  # the PSA asked for this long before the next call (429)


async def sync(open_db: OpenDb, *, actor: User, adapter: PsaAdapter, settings: Any, pull: bool = False) -> Synced:
    """Deliver every item that is due (unless ``[psa] deliver_from_app`` is off); then, if
    asked, pull what changed on the board."""
    drained = Drained(0, 0, 0)
    if settings.psa.deliver_from_app:
        drained = await drain_as_configured(open_db, actor=actor, adapter=adapter, settings=settings)
    if not pull:
        return Synced(drained)
    try:
        async with open_db() as db:
            report = await psa_pull.pull_changes(db, actor=actor, adapter=adapter)
    except PsaRateLimited as exc:
        return Synced(drained, problem=str(exc), wait_seconds=exc.retry_after)
    except PsaError as exc:
        return Synced(drained, problem=str(exc))
    return Synced(drained, pulled=psa_pull.summary(report))


async def keep_in_sync(
    open_db: OpenDb, *, user: Callable[[], User], settings: Any, wake: asyncio.Event, tell: Tell
) -> None:
    """The app's PSA companion, until cancelled: a pull on start if ``[psa] pull_on_start``,
    then, with ``deliver_from_app``, a delivery pass each time ``wake`` is set (a walk ended)
    and every ``app_sync_seconds`` (retries), longer when the PSA asks for a wait. ``tell``
    gets each new problem once, in words; nothing here blocks or raises into the app."""
    psa = settings.psa
    try:
        adapter = make_adapter(psa)
    except (PsaError, NoPsaConfigured) as exc:
        tell(f"PSA delivery is off: {exc}")
        return
    pull = psa.pull_on_start

    async def one_pass() -> tuple[str, float]:
        nonlocal pull
        synced = await sync(open_db, actor=user(), adapter=adapter, settings=settings, pull=pull)
        pull = False
        return _news(synced), synced.wait_seconds

    try:
        await keep_delivering(
            one_pass,
            every=psa.app_sync_seconds,
            wake=wake,
            tell=tell,
            what="PSA delivery",
            once=not psa.deliver_from_app,
        )
    finally:
        await adapter.aclose()


def _news(synced: Synced) -> str:
    """What the tech is told after a pass: failures for good, a pull's counts, a refusal."""
    said = []
    if synced.drained.failed:
        said.append(f"{synced.drained.failed} PSA update(s) could not be delivered: `rflow psa status` says why")
    if synced.pulled:
        said.append(f"PSA pull: {synced.pulled}")
    if synced.problem:
        said.append(f"PSA pull failed: {synced.problem}")
    return "; ".join(said)
