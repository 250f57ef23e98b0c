"""The demo desk: an account, its people, a dozen tickets and the starter flows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlmodel.ext.asyncio.session import AsyncSession

from rflow_tui.domain.enums import Role
from rflow_tui.models import Account, Ticket, User, utcnow
from rflow_tui.services.errors import NotFound
from rflow_tui.services.tickets import record_import
from rflow_tui.services.users import add_user, create_account

DEMO_TICKETS = Path(__file__).resolve().parent.parent / "data" / "demo" / "tickets.json"
TECH_EMAIL = "tina.tech@demo.rflow"
ENGINEER_EMAIL = "eddie.engineer@demo.rflow"
OWNER_EMAIL = "olivia.owner@demo.rflow"


@dataclass
class DemoDesk:
    account: Account
    owner: User
    tech: User
    engineer: User


async def seed_demo(db: AsyncSession) -> DemoDesk:
    """Seed an empty store with the demo desk; tickets are aged a few hours apart."""
    owner = await create_account(db, name="Demo Help Desk", owner_email=OWNER_EMAIL, owner_name="Olivia Owner")
    tech = await add_user(db, actor=owner, email=TECH_EMAIL, name="Tina Tech", role=Role.L1_TECH)
    engineer = await add_user(
        db, actor=owner, email=ENGINEER_EMAIL, name="Eddie Engineer", role=Role.ENGINEER, coverage=True
    )
    rows = json.loads(DEMO_TICKETS.read_text(encoding="utf-8"))
    now = utcnow()
    for age, row in enumerate(reversed(rows)):
        created = now - timedelta(hours=3 * age + 1, minutes=7 * age)
        db.add(Ticket(account_id=owner.account_id, created_at=created, updated_at=created, **row))
    await record_import(db, owner, count=len(rows), source="demo tickets")
    await db.commit()

    from rflow_tui.services.library import install_starter_library

    await install_starter_library(db, actor=owner)
    account = await db.get(Account, owner.account_id)
    if account is None:  # just made, in this transaction
        raise NotFound("the demo account vanished while it was being made")
    return DemoDesk(account=account, owner=owner, tech=tech, engineer=engineer)
