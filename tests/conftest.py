"""Shared fixtures: a fresh SQLite store per test, with a desk, its people and tickets."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

import pytest

from rflow_tui.config import normalize_database_url
from rflow_tui.db import open_store
from rflow_tui.models import Ticket, User
from rflow_tui.services.users import add_user, create_account


@pytest.fixture
async def db_url(tmp_path):
    """A fresh SQLite file; or, with RFLOW_TEST_POSTGRES set to a server URL, a fresh
    PostgreSQL database per test (the whole suite then runs against PostgreSQL)."""
    server = os.environ.get("RFLOW_TEST_POSTGRES")
    if not server:
        yield f"sqlite+aiosqlite:///{tmp_path / 'rflow.sqlite3'}"
        return
    import asyncpg

    name = f"rflow_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    base = server.rsplit("/", 1)[0]
    yield normalize_database_url(f"{base}/{name}")
    await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    await admin.close()


@pytest.fixture
async def store(db_url):
    """(engine, session factory) on a migrated, empty database."""
    engine, open_db = await open_store(db_url)
    yield engine, open_db
    await engine.dispose()


@pytest.fixture
async def db(store):
    _, open_db = store
    async with open_db() as session:
        yield session


@dataclass
class Desk:
    owner: User
    admin: User
    engineer: User
    coverage: User
    tech: User


async def make_desk(db, name: str = "Contoso IT", domain: str = "contoso.test") -> Desk:
    owner = await create_account(db, name=name, owner_email=f"owner@{domain}", owner_name="Olga Owner")
    admin = await add_user(db, actor=owner, email=f"admin@{domain}", role="admin")
    engineer = await add_user(db, actor=owner, email=f"eng@{domain}", role="engineer")
    coverage = await add_user(db, actor=owner, email=f"cover@{domain}", role="engineer", coverage=True)
    tech = await add_user(db, actor=owner, email=f"tech@{domain}", name="Tina Tech", role="l1_tech")
    for n, (subject, category) in enumerate(
        [("Outlook will not open", "email"), ("Printer offline on 3rd floor", "printing"), ("VPN drops", "network")],
        start=1,
    ):
        db.add(Ticket(account_id=owner.account_id, ticket_id=f"T-{n}", subject=subject, body="", category=category))
    await db.commit()
    # Detached, like the app's logged-in user: a rolled-back operation must not expire them.
    for user in (owner, admin, engineer, coverage, tech):
        db.expunge(user)
    return Desk(owner, admin, engineer, coverage, tech)


@pytest.fixture
async def desk(db) -> Desk:
    return await make_desk(db)
