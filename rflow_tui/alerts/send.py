"""Sending one alert to one apprise URL, and what became of it, in the outbox's terms.

rflow never speaks Slack, Teams, SMTP or a webhook itself: apprise does (imported here on
the first send, never at start-up). Apprise reports each service's outcome
(``AppriseResult``) and its own log lines, not the HTTP response, so:

- a server's ``Retry-After`` never reaches rflow: a 429 (apprise logs "error=429") waits
  rflow's own rate-limit wait instead (``RATE_LIMITED``);
- a request that went out and got no answer (a read timeout, or apprise's own deadline) is
  ``UNCONFIRMED``: the alert may have arrived, and no service apprise speaks to can be asked
  whether it did, so it is not sent again unless someone asks (``rflow alerts retry``);
- an answer that will not change (a 4xx other than 408/429, a URL apprise cannot read) is
  ``REFUSED``; anything else (5xx, the server unreachable) may pass: ``RETRY``.

A generic webhook (``json://``, ``form://``, ``xml://`` and their ``s`` forms) also gets an
``Idempotency-Key`` header, the same for every try of one alert to one destination, so a
receiver that keeps keys can drop a second copy. Apprise is told to try once (``retry=0``
is its default): the outbox owns retries.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qs, urlsplit

from rflow_tui.alerts.message import Alert

KEYED_SCHEMES = frozenset({"json", "jsons", "form", "forms", "xml", "xmls"})
KEY_HEADER = "Idempotency-Key"
_STATUS = re.compile(r"error=(\d{3})\b")
_MASK = re.compile(r"(://[^\s:/@]*:)\S*@")
DETAIL_CAP = 200


class Outcome(StrEnum):
    SENT = "sent"
    UNCONFIRMED = "unconfirmed"  # sent, no answer: it may have arrived
    RETRY = "retry"  # it did not arrive: try again after the backoff
    RATE_LIMITED = "rate_limited"  # a 429: try again after the rate-limit wait
    REFUSED = "refused"  # it will not arrive as it is: failed until someone re-queues it


@dataclass(frozen=True)
class Destination:
    """One configured apprise URL. The URL holds secrets (a webhook's token, an SMTP
    password): only its ``fingerprint`` and ``kind`` are ever stored or shown."""

    url: str = field(repr=False)

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.url.encode()).hexdigest()[:16]

    @property
    def kind(self) -> str:
        return self.url.split("://", 1)[0].lower()


@dataclass(frozen=True)
class Sent:
    outcome: Outcome
    detail: str = ""


def destination_key(alert_key: str, destination: Destination) -> str:
    """The idempotency key of one alert to one destination: the same on every try."""
    return hashlib.sha256(f"{alert_key}:{destination.fingerprint}".encode()).hexdigest()[:32]


def prepared_url(destination: Destination, *, key: str, timeout: float) -> str:
    """The URL apprise is given: read and connect timeouts (unless the URL sets its own), and
    the idempotency header for a generic webhook."""
    query = parse_qs(urlsplit(destination.url).query, keep_blank_values=True)
    extra = [f"{name}={timeout:g}" for name in ("rto", "cto") if name not in query]
    if destination.kind in KEYED_SCHEMES and f"+{KEY_HEADER}" not in query:
        extra.append(f"+{KEY_HEADER}={key}")
    if not extra:
        return destination.url
    return destination.url + ("&" if "?" in destination.url else "?") + "&".join(extra)


async def send(destination: Destination, alert: Alert, *, key: str, timeout: float) -> Sent:
    """Send ``alert`` to ``destination`` once (apprise in a worker thread) and judge the result."""
    import apprise

    _keep_apprise_quiet()
    notifier = apprise.Apprise()
    if not notifier.add(prepared_url(destination, key=key, timeout=timeout)):
        return Sent(Outcome.REFUSED, f"apprise cannot use this {destination.kind}:// URL (check it in [alerts] urls)")
    result = await asyncio.to_thread(
        notifier.notify,
        body=alert.body,
        title=alert.title,
        body_format=apprise.NotifyFormat.TEXT,
        log_level=logging.DEBUG,  # the socket error says whether the request had gone out
        timeout=timeout * 3,  # a backstop over connect + read: past it apprise stops waiting
    )
    try:
        return judged(result)
    finally:
        result.close()


def judged(result: Any) -> Sent:
    """An ``AppriseResult`` for one service, as the outbox acts on it."""
    import apprise

    if result.status == apprise.AppriseResultStatus.SUCCESS:
        return Sent(Outcome.SENT)
    entries = [(entry.level, entry.message) for entry in result.logs()]
    said = [message for level, message in entries if level in ("WARNING", "ERROR", "CRITICAL")]
    detail = _MASK.sub(r"\1***@", said[0] if said else f"apprise: {result.status.name.lower()}")[:DETAIL_CAP]
    everything = "\n".join(message for _, message in entries)
    if result.status == apprise.AppriseResultStatus.TIMEOUT or _no_answer(everything):
        return Sent(Outcome.UNCONFIRMED, f"no answer after sending (it may have arrived): {detail}")
    codes = _STATUS.findall(everything)
    if "429" in codes:
        return Sent(Outcome.RATE_LIMITED, detail)
    if codes and 400 <= int(codes[-1]) < 500 and codes[-1] != "408":
        return Sent(Outcome.REFUSED, detail)
    return Sent(Outcome.RETRY, detail)


def _no_answer(logs: str) -> bool:
    """The request went out and no answer came, as apprise's socket error says: requests'
    "Read timed out", or smtplib's bare "timed out" (which may also be a slow connect: taken
    as unconfirmed, so a slow mail server never gets the alert twice); requests' connect
    timeout sent nothing."""
    for line in logs.casefold().splitlines():
        if line.startswith("socket exception:") and "timed out" in line and "connect timeout" not in line:
            return True
    return False


def _keep_apprise_quiet() -> None:
    """Apprise's log lines are read from its result, at debug level (they say whether a
    request went out); they carry the message body, so they never reach the desk's own logs
    or the terminal: the outcome is rflow's to report."""
    log = logging.getLogger("apprise")
    if log.propagate:
        log.setLevel(logging.DEBUG)
        log.propagate = False
        log.addHandler(logging.NullHandler())
