"""Tickets: internal ones rflow owns, PSA ones it only references."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rflow_tui.domain.enums import OPEN_TICKET_STATUSES, TicketKind, values
from rflow_tui.models import Ticket, User, utcnow
from rflow_tui.services.access import get_in_account, in_account
from rflow_tui.services.errors import ValidationFailed
from rflow_tui.services.fields import accepted

IMPORT_FIELDS = ("ticket_id", "subject", "body", "requester", "category", "ticket_kind", "psa_system")
OPTIONAL_FIELDS = ("status", "created_at")  # status is accepted and ignored: an import opens tickets as new


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
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


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


def _queue_filter(account_id: int, search: str | None) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = [
        col(Ticket.account_id) == account_id,
        col(Ticket.status).in_(OPEN_TICKET_STATUSES),
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
    account_id: int,
    *,
    search: str | None = None,
    sort: str = "age",
    offset: int = 0,
    limit: int = 200,
) -> list[Ticket]:
    """One page of the desk's open queue: the picker loads what is visible, not everything."""
    order = SORTS.get(sort)
    if order is None:
        raise ValidationFailed(f"unknown sort '{sort}' (one of {', '.join(SORTS)})")
    stmt = select(Ticket).where(*_queue_filter(account_id, search)).order_by(*order).offset(offset).limit(limit)
    return list(await db.exec(stmt))


async def count_open_tickets(db: AsyncSession, account_id: int, *, search: str | None = None) -> int:
    stmt = select(func.count()).select_from(Ticket).where(*_queue_filter(account_id, search))
    return (await db.exec(stmt)).one()


def _clean_row(row: dict[str, Any], where: str) -> dict[str, Any]:
    unknown = set(row) - set(IMPORT_FIELDS) - set(OPTIONAL_FIELDS)
    if unknown:
        allowed = ", ".join((*IMPORT_FIELDS, *OPTIONAL_FIELDS))
        raise ValidationFailed(f"{where}: unknown column(s) {', '.join(sorted(unknown))} (allowed: {allowed})")
    data: dict[str, Any] = {
        k: accepted(row.get(k), f"{where}: {k}", single_line=k != "body").strip() for k in IMPORT_FIELDS
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
    if await find_ticket(db, actor.account_id, data["ticket_id"]):
        raise ValidationFailed(f"ticket {data['ticket_id']} already exists")
    ticket = Ticket(account_id=actor.account_id, **data)
    db.add(ticket)
    await db.commit()
    return ticket


@dataclass
class ImportReport:
    imported: int
    errors: list[str]
    skipped: int = 0


def read_ticket_file(path: Path) -> tuple[list[dict[str, Any]], list[int]]:
    """Rows from a CSV (header row) or JSON (a list of objects) file, and the line each starts on."""
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ValidationFailed(f"{path}: cannot be read: {exc.strerror}") from exc
    if path.suffix.lower() == ".json":
        return _json_rows(path, raw)
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(raw))
        rows, lines = [], []
        for row in reader:
            rows.append(row)
            lines.append(reader.line_num)  # the line the row ends on: its own line unless a field spans lines
        return rows, lines
    raise ValidationFailed(f"{path}: expected a .csv or .json file")


def _json_rows(path: Path, raw: str) -> tuple[list[dict[str, Any]], list[int]]:
    """Decode a JSON list one item at a time, so each item's line is known."""
    decoder = json.JSONDecoder()
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    expected = ValidationFailed(f"{path}: expected a JSON list of ticket objects")
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
            rows.append(item)
            lines.append(raw.count("\n", 0, at) + 1)
            at = _skip_space(raw, end)
            if raw[at : at + 1] == ",":
                at = _skip_space(raw, at + 1)
            elif raw[at : at + 1] != "]":
                raise json.JSONDecodeError("expected ',' or ']'", raw, at)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(f"{path}: not valid JSON: {exc}") from exc
    return rows, lines


def _skip_space(raw: str, at: int) -> int:
    while at < len(raw) and raw[at] in " \t\r\n":
        at += 1
    return at


async def import_tickets(
    db: AsyncSession,
    *,
    actor: User,
    rows: list[dict[str, Any]],
    source: str,
    lines: list[int] | None = None,
    skip_existing: bool = False,
) -> ImportReport:
    """All rows or none: every bad row is reported, and any error imports nothing.

    ``lines`` are the rows' line numbers in the file (messages name them);
    ``skip_existing`` leaves tickets already on the desk alone (an export that
    overlaps the last one) instead of refusing the file.
    """
    errors: list[str] = []
    clean: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, row in enumerate(rows):
        where = f"{source} line {lines[index]}" if lines else f"{source} row {index + 1}"
        try:
            data = _clean_row(row, where)
        except ValidationFailed as exc:
            errors.append(str(exc))
            continue
        if data["ticket_id"] in seen:
            errors.append(f"{where}: ticket_id {data['ticket_id']} appears twice in the file")
        seen.add(data["ticket_id"])
        clean.append(data)
    existing: set[str] = set()
    if seen:
        existing = set(
            await db.exec(
                select(Ticket.ticket_id).where(Ticket.account_id == actor.account_id, col(Ticket.ticket_id).in_(seen))
            )
        )
        if not skip_existing:
            errors += [
                f"{source}: ticket {tid} already exists (--skip-existing imports the rest)" for tid in sorted(existing)
            ]
    if errors:
        return ImportReport(imported=0, errors=errors)
    new = [data for data in clean if data["ticket_id"] not in existing]
    db.add_all(Ticket(account_id=actor.account_id, **data) for data in new)
    await db.commit()
    return ImportReport(imported=len(new), errors=[], skipped=len(clean) - len(new))


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
