"""The alert outbox: an escalation owes the desk's alert destinations an alert, and each
destination gets it once, whenever it answers.

``enqueue_escalation`` writes the row inside the escalation's transaction, for every
escalation: what the alert is made of, as the escalation knew it. Whoever delivers it
(``rflow alerts push``) decides by their own ``[alerts]`` where it goes, whether the
escalation is one the desk alerts on (its reason category, its ticket's priority: one the
filters leave out is ``skipped``) and whether the tech's notes go with it; a tech's config
needs no ``[alerts]``. The lease, backoff and re-queueing are the outbox's
(``services/outbox.py``).

Once per destination: each destination a try reaches is written into the row's ``sent_to``
(its URL's fingerprint) and committed before the next one is tried, so a drain that dies
half-way sends only what is left. A destination that took the request and never answered
is written there too, as ``unconfirmed``: it may have the alert, and nothing apprise speaks
to can say, so it is not sent again until someone re-queues the row (``retry``), which sends
it again on purpose. A 429 waits ``RATE_LIMIT_WAIT`` (apprise does not pass on Retry-After).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from rflow_tui.alerts.message import compose
from rflow_tui.alerts.send import Destination, Outcome, destination_key, send
from rflow_tui.config import AlertSettings
from rflow_tui.db import write_transaction
from rflow_tui.models import AlertOutboxItem, L1WalkSession, Ticket, User, utcnow
from rflow_tui.redact import DEFAULT_PRIVACY, Privacy
from rflow_tui.services import audit
from rflow_tui.services import outbox as lifecycle
from rflow_tui.services.errors import InvalidState
from rflow_tui.services.outbox import DELIVERED, FAILED, PENDING, Drained, OpenDb

SKIPPED = "skipped"
RATE_LIMIT_WAIT = timedelta(seconds=60)
REF_LENGTH = 12

__all__ = ["DELIVERED", "FAILED", "PENDING", "SKIPPED", "Drained"]


def enqueue_escalation(
    db: AsyncSession, walk: L1WalkSession, *, ticket: Ticket | None, escalated_by: str, notes: list[str]
) -> AlertOutboxItem:
    """The alert a walk's escalation owes. Called inside the escalation's transaction, after
    the walk's reason is set; ``notes``: the tech's notes, kept for a desk that sends them."""
    item = AlertOutboxItem(
        account_id=walk.account_id,
        session_id=walk.id or 0,
        ticket_id=walk.ticket_id,
        reason_category=walk.escalation_reason_category or "",
        priority=(ticket.priority if ticket else "") or "",
        facts={
            "ticket_id": walk.ticket_id,
            "subject": ticket.subject if ticket else "",
            "priority": (ticket.priority if ticket else "") or "",
            "reason_category": walk.escalation_reason_category or "",
            "reason": walk.escalation_reason or "",
            "escalated_by": escalated_by,
            "link": (ticket.psa_url if ticket else None) or "",
            "notes": notes,
        },
        idempotency_key=secrets.token_hex(16),
        sent_to={},
    )
    db.add(item)
    return item


def left_out(item: AlertOutboxItem, alerts: AlertSettings) -> str | None:
    """Why the desk's filters keep this escalation from alerting, or None when it goes."""
    if alerts.categories and item.reason_category not in alerts.categories:
        return f"reason category {item.reason_category} is not one [alerts] categories alerts on"
    if alerts.priorities and item.priority.casefold() not in {p.casefold() for p in alerts.priorities}:
        return f"ticket priority '{item.priority or 'none'}' is not one [alerts] priorities alerts on"
    return None


def destinations(alerts: AlertSettings) -> list[Destination]:
    """The configured URLs, each once."""
    return [Destination(url) for url in dict.fromkeys(alerts.urls)]


async def due_items(db: AsyncSession, *, actor: User, now: datetime | None = None) -> list[int]:
    """The ids of the actor's account's alerts due now, oldest first."""
    return await lifecycle.due(db, AlertOutboxItem, actor=actor, doing="deliver escalation alerts", now=now or utcnow())


async def deliver_one(
    db: AsyncSession,
    *,
    actor: User,
    alerts: AlertSettings,
    item_id: int,
    privacy: Privacy = DEFAULT_PRIVACY,
    now: datetime | None = None,
) -> str:
    """Claim the alert (a lease, committed), send it to each destination that does not have it
    yet (outside any transaction), then record what happened: the row's state afterwards."""
    if not alerts.urls:
        raise InvalidState("no [alerts] urls are configured: there is nowhere to send alerts")
    now = now or utcnow()
    item, claimed = await lifecycle.claim(db, AlertOutboxItem, actor=actor, item_id=item_id, now=now)
    if not claimed:
        return str(item.state)  # delivered, failed, skipped, or another drain holds its lease
    reason = left_out(item, alerts)
    if reason:
        async with write_transaction(db):
            item = await lifecycle.locked(db, AlertOutboxItem, actor, item_id)
            item.state, item.last_error = SKIPPED, reason
            db.add(item)
        return SKIPPED
    alert = compose(
        item.facts or {},
        ref=item.idempotency_key[:REF_LENGTH],
        include_notes=alerts.include_notes,
        ticket_link=alerts.ticket_link,
        privacy=privacy,
    )
    sent_to = dict(item.sent_to or {})
    problems: list[str] = []
    waits: list[timedelta] = []
    for target in destinations(alerts):
        if target.fingerprint in sent_to:
            continue
        result = await send(
            target, alert, key=destination_key(item.idempotency_key, target), timeout=alerts.timeout_seconds
        )
        if result.outcome in (Outcome.SENT, Outcome.UNCONFIRMED):
            at = utcnow().isoformat()
            sent_to[target.fingerprint] = {"kind": target.kind, "state": result.outcome.value, "at": at}
            if result.outcome is Outcome.UNCONFIRMED:
                sent_to[target.fingerprint]["detail"] = result.detail
            await _note_sent(db, actor, item_id, sent_to)
            continue
        problems.append(f"{target.kind}: {result.detail}")
        if result.outcome is Outcome.RATE_LIMITED:
            waits.append(max(RATE_LIMIT_WAIT, lifecycle.backoff(item.attempts)))
        elif result.outcome is Outcome.RETRY:
            waits.append(lifecycle.backoff(item.attempts))
    # An unconfirmed send (this try's or an earlier one's) keeps the alert from counting as
    # delivered: nobody knows it arrived, and the screen should say so.
    problems += [
        f"{sent['kind']}: {sent.get('detail') or 'no answer after sending (it may have arrived)'}"
        for sent in sent_to.values()
        if sent.get("state") == Outcome.UNCONFIRMED.value
    ]
    if problems:
        retry_at = now + max(waits) if waits else None
        return await lifecycle.record_failure(
            db, AlertOutboxItem, actor=actor, item_id=item_id, error="; ".join(problems), retry_at=retry_at
        )
    async with write_transaction(db):
        item = await lifecycle.locked(db, AlertOutboxItem, actor, item_id)
        item.state, item.delivered_at, item.last_error = DELIVERED, utcnow(), None
        db.add(item)
        await audit.record_change(
            db, actor, "alert.deliver", "alert_outbox", item.id, ticket_id=item.ticket_id, destinations=len(sent_to)
        )
    return DELIVERED


async def _note_sent(db: AsyncSession, actor: User, item_id: int, sent_to: dict[str, Any]) -> None:
    """One destination has it: committed before the next is tried."""
    async with write_transaction(db):
        item = await lifecycle.locked(db, AlertOutboxItem, actor, item_id)
        item.sent_to = dict(sent_to)  # a new dict: the JSON column sees the change
        db.add(item)


async def outbox(db: AsyncSession, *, actor: User, limit: int = 200) -> list[AlertOutboxItem]:
    """The account's alerts, newest first: pending, delivered, failed and skipped, with the last error."""
    return await lifecycle.newest(db, AlertOutboxItem, actor=actor, doing="see the alert outbox", limit=limit)


async def retry(db: AsyncSession, *, actor: User, item_id: int) -> AlertOutboxItem:
    """Queue a failed alert again, due now: destinations that have it keep it, and one left
    unconfirmed (it may have arrived) is sent again, because someone asked."""
    return await lifecycle.requeue(
        db,
        AlertOutboxItem,
        actor=actor,
        item_id=item_id,
        doing="re-queue escalation alerts",
        action="alert.retry",
        reset=lambda item: {"sent_to": _confirmed(item.sent_to)},
    )


def _confirmed(sent_to: dict[str, Any] | None) -> dict[str, Any]:
    return {key: sent for key, sent in (sent_to or {}).items() if sent.get("state") == Outcome.SENT.value}


async def drain(
    open_db: OpenDb,
    *,
    actor: User,
    alerts: AlertSettings,
    privacy: Privacy = DEFAULT_PRIVACY,
    concurrency: int = 4,
    now: datetime | None = None,
) -> Drained:
    """Deliver every alert due now, ``concurrency`` alerts at a time; the counts of what happened."""
    now = now or utcnow()
    async with open_db() as db:
        due = await due_items(db, actor=actor, now=now)

    async def deliver(db: AsyncSession, item_id: int) -> str:
        return await deliver_one(db, actor=actor, alerts=alerts, item_id=item_id, privacy=privacy, now=now)

    return await lifecycle.drain(open_db, due, deliver, concurrency=concurrency)


def status_line(item: AlertOutboxItem | None, *, configured: bool = True) -> tuple[str, str] | None:
    """What became of an escalation's alert, in a few words, with its state ("sent",
    "pending", "failed", "skipped"), for the escalations screen; None: nothing to say (no
    alert, or one never tried where this rflow has no ``[alerts] urls``: likely a desk that
    does not send alerts, so "queued" would only be noise)."""
    if item is None or (not configured and item.state == PENDING and not item.attempts):
        return None
    if item.state == DELIVERED:
        count = len(item.sent_to or {})
        return "sent", f"Alert sent to {count} destination{'s' if count != 1 else ''}"
    if item.state == SKIPPED:
        return "skipped", f"No alert: {item.last_error}"
    if item.state == FAILED:
        return "failed", f"Alert failed: {item.last_error}"
    if item.attempts:
        return "pending", f"Alert not out yet (try {item.attempts}, retrying): {item.last_error}"
    return "pending", f"Alert queued: this app sends it within {APP_PASS_SECONDS:g} s"


def as_row(item: AlertOutboxItem) -> dict[str, Any]:
    """An alert as `rflow alerts status --json` shows it (never its text, never a URL)."""
    return {
        "id": item.id,
        "ticket": item.ticket_id,
        "session": item.session_id,
        "reason_category": item.reason_category,
        "state": item.state,
        "attempts": item.attempts,
        "next_attempt_at": lifecycle.when_due(item),
        "last_error": item.last_error,
        "sent_to": [{"kind": sent.get("kind"), "state": sent.get("state")} for sent in (item.sent_to or {}).values()],
    }


APP_PASS_SECONDS = 30.0  # the app's pass for alerts waiting to retry (their backoff starts at 30 s)


async def keep_sending(
    open_db: OpenDb, *, user: Callable[[], User], settings: Any, wake: asyncio.Event, tell: Callable[[str], None]
) -> None:
    """The running app sends the alerts that are due, where its config has ``[alerts] urls``:
    at once, each time ``wake`` is set (a walk ended) and every APP_PASS_SECONDS, until cancelled."""

    async def one_pass() -> tuple[str, float]:
        drained = await drain(open_db, actor=user(), alerts=settings.alerts, privacy=settings.privacy.policy())
        if drained.failed:
            return f"{drained.failed} escalation alert(s) could not be sent: `rflow alerts status` says why", 0.0
        return "", 0.0

    await lifecycle.keep_delivering(one_pass, every=APP_PASS_SECONDS, wake=wake, tell=tell, what="Sending alerts")
