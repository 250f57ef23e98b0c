"""Tickets: internal ones rflow owns, PSA ones it only references."""

from __future__ import annotations

import csv
import itertools
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, func, insert, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rflow_tui.db import write_transaction
from rflow_tui.domain.enums import CLOSED_TICKET_STATUSES, OPEN_TICKET_STATUSES, TicketKind, TicketStatus, values
from rflow_tui.files import FileProblem, read_text, text_lines
from rflow_tui.models import Ticket, User, utcnow
from rflow_tui.services import audit
from rflow_tui.services.access import Need, authorize, get_in_account, in_account
from rflow_tui.services.errors import InvalidState, ValidationFailed
from rflow_tui.services.fields import accepted

IMPORT_FIELDS = ("ticket_id", "subject", "body", "requester", "category", "ticket_kind", "psa_system")
OPTIONAL_FIELDS = ("status", "created_at")  # status is accepted and ignored: an import opens tickets as new
# One limit per field, whatever the format (a CSV field cannot be larger than the body's anyway).
FIELD_LIMITS = {
    "ticket_id": 64,
    "subject": 500,
    "body": 128 * 1024,
    "requester": 200,
    "category": 80,
    "ticket_kind": 10,
    "psa_system": 40,
}
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)


def _created_at(value: Any, where: str) -> datetime | None:
    """An imported backlog keeps its ages: ISO 8601, UTC when no offset is given."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        when = datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationFailed(
            f"{where}: created_at must be an ISO 8601 date or time like 2026-11-24T09:30:00Z, not {str(value)[:40]!r}"
        ) from None
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    if not EARLIEST <= when <= utcnow() + timedelta(days=1):
        raise ValidationFailed(f"{where}: created_at {str(value)[:40]!r} is not a date a ticket can have been opened")
    return when


def _field_text(value: Any, key: str, where: str) -> str:
    """A field's text as given: a string (or, for an id, a whole number); nothing else is
    turned into text, so a list or NaN in a JSON file is refused, not stored as Python wrote it."""
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool) and key == "ticket_id":
        return str(value)
    if not isinstance(value, str):
        kind = "a number" if isinstance(value, (int, float)) else f"a JSON {type(value).__name__}"
        raise ValidationFailed(f"{where}: {key} must be text, not {kind}")
    if len(value) > FIELD_LIMITS[key]:
        raise ValidationFailed(f"{where}: {key} is {len(value):,} characters; the limit is {FIELD_LIMITS[key]:,}")
    return value


def problem_text(ticket: Ticket) -> str:
    """The default problem text an AI build starts from (also the fixture key's input)."""
    body = (ticket.body or "").strip()
    return f"{ticket.subject.strip()}\n\n{body}" if body else ticket.subject.strip()


async def get_ticket(db: AsyncSession, account_id: int, ticket_id: str) -> Ticket:
    return await get_in_account(
        db, Ticket, account_id, ticket_id=ticket_id, missing=f"no ticket {ticket_id} in this account"
    )


async def find_ticket(db: AsyncSession, account_id: int, ticket_id: str) -> Ticket | None:
    return await in_account(db, Ticket, account_id, ticket_id=ticket_id)


async def ticket_of(db: AsyncSession, *, actor: User, ticket_id: str) -> Ticket | None:
    """The ticket a screen shows, in the actor's account (None for a PSA ticket rflow does not hold)."""
    return await find_ticket(db, actor.account_id, ticket_id)


def _queue_filter(account_id: int, search: str | None, closed: bool = False) -> list[ColumnElement[bool]]:
    """The open queue, or with ``closed`` the resolved and escalated tickets (to find and reopen one)."""
    conds: list[ColumnElement[bool]] = [
        col(Ticket.account_id) == account_id,
        col(Ticket.status).in_(CLOSED_TICKET_STATUSES if closed else OPEN_TICKET_STATUSES),
    ]
    if search:
        like = f"%{search.strip().lower()}%"
        conds.append(
            or_(
                func.lower(Ticket.ticket_id).like(like),
                func.lower(Ticket.subject).like(like),
                func.lower(Ticket.requester).like(like),
                func.lower(Ticket.category).like(like),
            )
        )
    return conds


SORTS = {
    "age": (col(Ticket.created_at).asc(), col(Ticket.id).asc()),
    "newest": (col(Ticket.created_at).desc(), col(Ticket.id).desc()),
    "id": (col(Ticket.ticket_id).asc(),),
    "subject": (func.lower(Ticket.subject).asc(), col(Ticket.id).asc()),
    "requester": (func.lower(Ticket.requester).asc(), col(Ticket.id).asc()),
    "status": (col(Ticket.status).asc(), col(Ticket.created_at).asc()),
}


async def list_open_tickets(
    db: AsyncSession,
    *,
    actor: User,
    search: str | None = None,
    sort: str = "age",
    offset: int = 0,
    limit: int = 200,
    closed: bool = False,
) -> list[Ticket]:
    """One page of the desk's open queue (``closed``: of its resolved and escalated tickets): the
    picker loads what is visible, not everything."""
    order = SORTS.get(sort)
    if order is None:
        raise ValidationFailed(f"unknown sort '{sort}' (one of {', '.join(SORTS)})")
    await authorize(db, actor, Need.WALK, "walk tickets")
    where = _queue_filter(actor.account_id, search, closed)
    stmt = select(Ticket).where(*where).order_by(*order).offset(offset).limit(limit)
    return list(await db.exec(stmt))


async def count_open_tickets(db: AsyncSession, *, actor: User, search: str | None = None, closed: bool = False) -> int:
    await authorize(db, actor, Need.WALK, "walk tickets")
    stmt = select(func.count()).select_from(Ticket).where(*_queue_filter(actor.account_id, search, closed))
    return (await db.exec(stmt)).one()


def _clean_row(row: dict[str, Any], where: str) -> dict[str, Any]:
    unknown = set(row) - set(IMPORT_FIELDS) - set(OPTIONAL_FIELDS)
    if unknown:
        allowed = ", ".join((*IMPORT_FIELDS, *OPTIONAL_FIELDS))
        raise ValidationFailed(f"{where}: unknown column(s) {', '.join(sorted(unknown))} (allowed: {allowed})")
    data: dict[str, Any] = {
        key: accepted(_field_text(row.get(key), key, where), f"{where}: {key}", single_line=key != "body").strip()
        for key in IMPORT_FIELDS
    }
    created_at = _created_at(row.get("created_at"), where)
    if created_at is not None:
        data["created_at"] = data["updated_at"] = created_at
    if not data["ticket_id"]:
        raise ValidationFailed(f"{where}: ticket_id is required")
    if len(data["ticket_id"]) > 64:
        raise ValidationFailed(f"{where}: ticket_id is longer than 64 characters")
    if not data["subject"]:
        raise ValidationFailed(f"{where}: subject is required")
    if len(data["subject"]) > 500:
        raise ValidationFailed(f"{where}: subject is longer than 500 characters")
    data["ticket_kind"] = data["ticket_kind"] or TicketKind.INTERNAL.value
    if data["ticket_kind"] not in tuple(TicketKind):
        raise ValidationFailed(f"{where}: ticket_kind must be {values(TicketKind)}, not '{data['ticket_kind']}'")
    if data["ticket_kind"] == TicketKind.PSA and not data["psa_system"]:
        raise ValidationFailed(f"{where}: a psa ticket needs psa_system (e.g. connectwise)")
    data["psa_system"] = data["psa_system"] or None
    return data


async def add_ticket(db: AsyncSession, *, actor: User, **fields: Any) -> Ticket:
    data = _clean_row(fields, "ticket")
    await authorize(db, actor, Need.MEMBER, "add tickets")
    if await find_ticket(db, actor.account_id, data["ticket_id"]):
        raise ValidationFailed(f"ticket {data['ticket_id']} already exists")
    ticket = Ticket(account_id=actor.account_id, **data)
    db.add(ticket)
    await audit.record_change(
        db,
        actor,
        "ticket.add",
        "ticket",
        ticket.ticket_id,
        ticket_kind=ticket.ticket_kind,
    )
    await db.commit()
    return ticket


@dataclass
class ImportReport:
    imported: int
    errors: list[str]
    skipped: int = 0


IMPORT_CHUNK = 1000  # rows per duplicate check and per insert: well under PostgreSQL's 32,767 parameters
NumberedRows = Iterable[tuple[int, dict[str, Any]]]  # (the line in the file, the row)


def read_ticket_file(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows from a CSV (header row) or JSON (a list of objects) file, each with the line it is on
    (CSV: the line it ends on; JSON: the line its object starts on). A CSV streams as it is imported.

    What no row check could report stops the import with ValidationFailed naming the
    line: text that is not UTF-8, a NUL byte, a CSV row with more or fewer fields than
    its header (a broken quote or a stray delimiter), JSON that is not a list of objects.
    """
    kind = path.suffix.lower()
    if kind not in (".csv", ".json"):
        raise ValidationFailed(f"{path}: expected a .csv or .json file")
    try:
        if kind == ".json":
            return iter(_json_rows(path, read_text(path)))
        lines = text_lines(path)
        first = next(lines, "")  # opens the file now: an unreadable one is refused before the store is touched
    except FileProblem as exc:
        raise ValidationFailed(str(exc)) from None
    return _csv_rows(path, itertools.chain([first], lines))


def _csv_rows(path: Path, lines: Iterator[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.reader(lines, strict=True)  # an unterminated quote is an error, not the rest of the file
    try:
        header = next(reader, [])
        for row in reader:
            if len(row) != len(header) and any(row):
                raise ValidationFailed(
                    f"{path} line {reader.line_num}: {len(row)} field(s) where the header has {len(header)}; "
                    "check that line's commas and quotes. Nothing was imported"
                )
            if any(row):
                yield reader.line_num, dict(zip(header, row, strict=True))
    except FileProblem as exc:
        raise ValidationFailed(f"{exc}. Nothing was imported") from None
    except csv.Error as exc:
        raise ValidationFailed(f"{path} line {reader.line_num}: not valid CSV ({exc}). Nothing was imported") from None


def _json_rows(path: Path, raw: str) -> list[tuple[int, dict[str, Any]]]:
    """Decode a JSON list one item at a time, so each item's line is known."""
    decoder = json.JSONDecoder()
    rows: list[tuple[int, dict[str, Any]]] = []
    expected = ValidationFailed(f"{path}: expected a JSON list of ticket objects")
    line, counted = 1, 0  # lines are counted on from the last item, not from the top each time
    try:
        at = _skip_space(raw, 0)
        if raw[at : at + 1] != "[":
            json.loads(raw)  # not JSON at all gets JSON's own message
            raise expected
        at = _skip_space(raw, at + 1)
        while raw[at : at + 1] != "]":
            item, end = decoder.raw_decode(raw, at)
            if not isinstance(item, dict):
                raise expected
            line, counted = line + raw.count("\n", counted, at), at
            # One decode per item makes new key strings each time (json.loads would share them): ~30 MB at 100,000.
            rows.append((line, {sys.intern(key): value for key, value in item.items()}))
            at = _skip_space(raw, end)
            if raw[at : at + 1] == ",":
                at = _skip_space(raw, at + 1)
            elif raw[at : at + 1] != "]":
                raise json.JSONDecodeError("expected ',' or ']'", raw, at)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(f"{path}: not valid JSON: {exc}") from exc
    except RecursionError:
        raise ValidationFailed(f"{path}: JSON nested too deeply") from None
    return rows


def _skip_space(raw: str, at: int) -> int:
    while at < len(raw) and raw[at] in " \t\r\n":
        at += 1
    return at


class _NothingImported(Exception):
    """Raised inside the import's transaction so that every chunk already inserted rolls back."""


async def import_tickets(
    db: AsyncSession, *, actor: User, rows: NumberedRows, source: str, skip_existing: bool = False
) -> ImportReport:
    """All rows or none: every bad row is reported (by its line), and any error imports nothing.

    One write transaction (so it waits for the lock like the app, never failing on a
    tech's note save) takes the rows a chunk at a time: each chunk is checked
    (fields, ids repeated in the file or already stored) and, while nothing has been
    wrong yet, inserted with one executemany, no ORM object per row. Any error rolls
    every chunk back; so does a file-level problem (ValidationFailed from
    ``read_ticket_file``), which propagates. ``skip_existing`` leaves tickets already
    on the desk alone (an export that overlaps the last one) instead of refusing the file.
    """
    errors: list[str] = []
    seen: set[str] = set()
    imported = skipped = 0
    try:
        async with write_transaction(db):
            await authorize(db, actor, Need.MEMBER, "import tickets")
            connection = await db.connection()
            numbered = iter(rows)
            while chunk := list(itertools.islice(numbered, IMPORT_CHUNK)):
                clean = _check_chunk(chunk, source, seen, errors)
                stored = await _stored_ids(db, actor, [data["ticket_id"] for data in clean])
                if stored and not skip_existing:
                    hint = "(--skip-existing imports the rest)"
                    errors += [f"{source}: ticket {tid} already exists {hint}" for tid in sorted(stored)]
                new = [data for data in clean if data["ticket_id"] not in stored]
                skipped += len(clean) - len(new)
                if new and not errors:
                    await connection.execute(insert(Ticket), [{**_defaults(actor), **data} for data in new])
                    imported += len(new)
            if errors:
                raise _NothingImported
            await record_import(db, actor, count=imported, source=source)
    except _NothingImported:
        return ImportReport(imported=0, errors=errors)
    return ImportReport(imported=imported, errors=[], skipped=skipped)


def _defaults(actor: User) -> dict[str, Any]:
    """What an imported row does not say: its desk, open, and now (unless it gave created_at)."""
    now = utcnow()
    return {"account_id": actor.account_id, "status": TicketStatus.OPEN.value, "created_at": now, "updated_at": now}


async def _stored_ids(db: AsyncSession, actor: User, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    stmt = select(Ticket.ticket_id).where(Ticket.account_id == actor.account_id, col(Ticket.ticket_id).in_(ids))
    return set(await db.exec(stmt))


def _check_chunk(
    chunk: list[tuple[int, dict[str, Any]]], source: str, seen: set[str], errors: list[str]
) -> list[dict[str, Any]]:
    """The chunk's rows that pass their own checks; each problem is appended to ``errors``."""
    clean = []
    for line, row in chunk:
        where = f"{source} line {line}"
        try:
            data = _clean_row(row, where)
        except ValidationFailed as exc:
            errors.append(str(exc))
            continue
        if data["ticket_id"] in seen:
            errors.append(f"{where}: ticket_id {data['ticket_id']} appears twice in the file")
            continue
        seen.add(data["ticket_id"])
        clean.append(data)
    return clean


async def reopen_ticket(db: AsyncSession, *, actor: User, ticket_id: str) -> Ticket:
    """A resolved or escalated internal ticket back to ``open`` (audited), so it can be walked,
    resolved or escalated again. Its resolution notes stay until a new walk replaces them."""
    async with write_transaction(db):
        await authorize(db, actor, Need.MEMBER, "reopen tickets")
        ticket = await get_in_account(
            db,
            Ticket,
            actor.account_id,
            ticket_id=ticket_id,
            lock=True,
            missing=f"no ticket {ticket_id} in this account",
        )
        if ticket.ticket_kind != TicketKind.INTERNAL:
            raise InvalidState(f"ticket {ticket_id} belongs to {ticket.psa_system or 'a PSA'}: reopen it there")
        if ticket.status in OPEN_TICKET_STATUSES:
            raise InvalidState(f"ticket {ticket_id} is already {ticket.status.replace('_', ' ')}")
        previous = ticket.status
        ticket.status = TicketStatus.OPEN
        ticket.updated_at = utcnow()
        db.add(ticket)
        await audit.record_change(
            db,
            actor,
            "ticket.reopen",
            "ticket",
            ticket_id,
            previous_status=previous,
        )
    return ticket


async def record_import(db: AsyncSession, actor: User, *, count: int, source: str) -> None:
    """One audit entry for a whole import (its rows are listed by the tickets themselves)."""
    await audit.record_change(
        db,
        actor,
        "ticket.import",
        "ticket",
        None,
        count=count,
        source=source[:200],
    )


async def set_internal_status(
    db: AsyncSession, account_id: int, ticket_id: str, status: str, notes: str | None = None
) -> None:
    """Set an internal ticket's status inside the caller's transaction; PSA tickets are left alone."""
    ticket = await find_ticket(db, account_id, ticket_id)
    if ticket is None or ticket.ticket_kind != TicketKind.INTERNAL:
        return
    ticket.status = status
    if notes is not None:
        ticket.resolution_notes = notes
    ticket.updated_at = utcnow()
    db.add(ticket)
