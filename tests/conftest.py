"""Shared fixtures: a fresh store per test, with a desk, its people and tickets.

Every test that reaches the database through ``db_url`` (directly or via ``store``, ``db``,
``desk``) runs twice: on SQLite and on PostgreSQL (a throwaway cluster this session starts,
see tests/pg_cluster.py). Mark a test ``sqlite_only`` or ``postgres_only`` when it checks
one engine's own behaviour; ``-m "not postgres"`` runs only the SQLite half.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from rflow_tui.db import open_store
from rflow_tui.models import Ticket, User
from rflow_tui.services.users import add_user, create_account
from tests.pg_cluster import ClusterUnavailable, skip_or_fail, start_server

BACKENDS = ("sqlite", "postgres")


def pytest_xdist_auto_num_workers(config):
    """Two workers per core: an app test spends about half its time waiting on the app's
    timers and workers, so a core has room for a second one (BENCHMARKS.md, "Test suite")."""
    return max(2, 2 * (os.cpu_count() or 1))


def pytest_generate_tests(metafunc):
    """Run every database test on each backend its markers allow."""
    if "backend" not in metafunc.fixturenames:
        return
    backends = [name for name in BACKENDS if not metafunc.definition.get_closest_marker(f"{other(name)}_only")]
    metafunc.parametrize("backend", backends, indirect=True)


def other(backend: str) -> str:
    return "postgres" if backend == "sqlite" else "sqlite"


def pytest_collection_modifyitems(items):
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("backend") == "postgres":
            item.add_marker("postgres")


@pytest.fixture
def backend(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def pg_server():
    """One PostgreSQL server for the session. Missing server: a skip that says how to enable
    it, or a failure when RFLOW_REQUIRE_POSTGRES is set (CI sets it)."""
    try:
        server = start_server()
    except ClusterUnavailable as exc:
        skip_or_fail(exc)
    yield server
    server.close()


@pytest.fixture
def db_url(backend, request, tmp_path):
    """A fresh database at the schema head, copied from a migrated template: a SQLite file,
    or a PostgreSQL database dropped afterwards."""
    yield from fresh_database(backend, request, tmp_path / "rflow.sqlite3", migrated=True)


@pytest.fixture
def empty_db_url(backend, request, tmp_path):
    """A database with no schema at all, for tests of the migrations themselves."""
    yield from fresh_database(backend, request, tmp_path / "empty.sqlite3", migrated=False)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """One SQLite file migrated to the head per worker, copied for each test: migrating a new
    file costs about 200 ms, a copy about 1 ms, and the opened copy is the same database."""
    import asyncio

    path = tmp_path_factory.mktemp("template") / "rflow.sqlite3"

    async def migrate() -> None:
        engine, _ = await open_store(f"sqlite+aiosqlite:///{path}")
        await engine.dispose()  # the last connection checkpoints the WAL into the file

    asyncio.run(migrate())
    return path


def fresh_database(backend: str, request, sqlite_file, migrated: bool):
    if backend == "sqlite":
        if migrated:
            import shutil

            shutil.copy2(request.getfixturevalue("sqlite_template"), sqlite_file)
        yield f"sqlite+aiosqlite:///{sqlite_file}"
        return
    server = request.getfixturevalue("pg_server")
    name = server.fresh_database() if migrated else server.empty_database()
    yield server.url(name)
    server.dispose_database(name)


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
