"""Tickets: internal ones rflow owns, PSA ones it only references."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from rflow_tui.domain.enums import OPEN_TICKET_STATUSES, TicketKind, values
from rflow_tui.models import Ticket, User, utcnow
from rflow_tui.services.access import get_in_account, in_account
from rflow_tui.services.errors import ValidationFailed
from rflow_tui.services.fields import accepted
IMPORT_FIELDS = ("ticket_id", "subject", "body", "requester", "category", "ticket_kind", "psa_system")


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


def _queue_filter(account_id: int, search: str | None):
    conds = [Ticket.account_id == account_id, col(Ticket.status).in_(OPEN_TICKET_STATUSES)]
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
    unknown = set(row) - set(IMPORT_FIELDS) - {"status"}
    if unknown:
        raise ValidationFailed(f"{where}: unknown column(s) {', '.join(sorted(unknown))}")
    data = {k: accepted(row.get(k), f"{where}: {k}", single_line=k != "body").strip() for k in IMPORT_FIELDS}
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


def read_ticket_file(path: Path) -> list[dict[str, Any]]:
    """Rows from a CSV (header row) or JSON (a list of objects) file."""
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ValidationFailed(f"{path}: cannot be read: {exc.strerror}") from exc
    if path.suffix.lower() == ".json":
        try:
            rows = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValidationFailed(f"{path}: not valid JSON: {exc}") from exc
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ValidationFailed(f"{path}: expected a JSON list of ticket objects")
        return rows
    if path.suffix.lower() == ".csv":
        return list(csv.DictReader(io.StringIO(raw)))
    raise ValidationFailed(f"{path}: expected a .csv or .json file")


async def import_tickets(db: AsyncSession, *, actor: User, rows: list[dict[str, Any]], source: str) -> ImportReport:
    """All rows or none: every bad row is reported, and any error imports nothing."""
    errors: list[str] = []
    clean: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, row in enumerate(rows, start=1):
        where = f"{source} row {number}"
        try:
            data = _clean_row(row, where)
        except ValidationFailed as exc:
            errors.append(str(exc))
            continue
        if data["ticket_id"] in seen:
            errors.append(f"{where}: ticket_id {data['ticket_id']} appears twice in the file")
        seen.add(data["ticket_id"])
        clean.append(data)
    if seen:
        existing = await db.exec(
            select(Ticket.ticket_id).where(Ticket.account_id == actor.account_id, col(Ticket.ticket_id).in_(seen))
        )
        for tid in sorted(existing):
            errors.append(f"{source}: ticket {tid} already exists")
    if errors:
        return ImportReport(imported=0, errors=errors)
    db.add_all(Ticket(account_id=actor.account_id, **data) for data in clean)
    await db.commit()
    return ImportReport(imported=len(clean), errors=[])


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
