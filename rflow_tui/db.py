"""Engine and database-session factory: SQLite pragmas, write locking, migrations at start.

Writers take the database write lock before they read what they will change
(``BEGIN IMMEDIATE`` on SQLite, ``SELECT ... FOR UPDATE`` on PostgreSQL), so two
processes appending to one session's JSON path never lose an update.
"""

from __future__ import annotations

import errno
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from rflow_tui.domain.errors import DatabaseError, StoreConflict, StoreFull, StoreReadOnly, StoreUnavailable

BUSY_TIMEOUT_MS = 10_000
WRITE = {"sqlite_begin": "IMMEDIATE"}


BUSY_MESSAGE = "the desk is busy: another rflow or tool holds it. Nothing was saved; try again in a moment"
FULL_MESSAGE = "the disk that holds the desk is full. Nothing was saved: free some space, then try again"
READ_ONLY_MESSAGE = (
    "the desk is read-only for you (its file, folder or disk may not be written). Nothing was saved; "
    "ask whoever set it up, or open a desk you may write to"
)
_FULL = ("database or disk is full", "no space left on device", "disk full", "could not extend file")
_READ_ONLY = ("readonly database", "read-only file system", "read-only transaction", "attempt to write a readonly")


def _cause(exc: BaseException) -> str:
    """The driver's own words, first line only: never the SQL or its parameters."""
    orig = getattr(exc, "orig", None) or exc
    text = getattr(orig, "strerror", None) or str(orig) or type(orig).__name__
    return text.strip().splitlines()[0][:200] if text.strip() else type(orig).__name__


def store_error(exc: BaseException) -> DatabaseError | None:
    """The domain error for a failure of the store itself, or None for anything else (a bug stays a bug).

    Connection refused or lost, a lock held too long, a constraint, a value the
    database will not take: each becomes a DatabaseError whose message says what
    happened and that nothing was saved, so a screen can show it and carry on.
    """
    from sqlalchemy import exc as sa

    if isinstance(exc, DatabaseError):
        return exc
    if isinstance(exc, sa.IntegrityError):
        return StoreConflict(
            f"the database refused the change ({_cause(exc)}); it clashes with another change. "
            "Nothing was saved: refresh and try again"
        )
    said = str(getattr(exc, "orig", None) or exc).lower()
    from_the_store = isinstance(exc, (sa.DBAPIError, OSError)) or type(exc).__module__.startswith("asyncpg")
    if from_the_store and (any(words in said for words in _FULL) or getattr(exc, "errno", None) == errno.ENOSPC):
        return StoreFull(FULL_MESSAGE)
    if from_the_store and (any(words in said for words in _READ_ONLY) or getattr(exc, "errno", None) == errno.EROFS):
        return StoreReadOnly(READ_ONLY_MESSAGE)
    if isinstance(exc, sa.DBAPIError):
        if exc.connection_invalidated:
            return StoreUnavailable(_unavailable(exc))
        if "locked" in said or "busy" in said:
            return DatabaseError(BUSY_MESSAGE)
        if isinstance(exc, (sa.OperationalError, sa.InterfaceError)):
            return StoreUnavailable(_unavailable(exc))
        return DatabaseError(f"the database refused this ({_cause(exc)}). Nothing was saved")
    if isinstance(exc, (sa.TimeoutError, sa.DisconnectionError, OSError, TimeoutError)):
        return StoreUnavailable(_unavailable(exc))
    if type(exc).__module__.split(".")[0] == "asyncpg":  # raised while connecting, before SQLAlchemy wraps it
        return StoreUnavailable(_unavailable(exc))
    return None


def _unavailable(exc: BaseException) -> str:
    return f"cannot reach the database ({_cause(exc)}). Nothing was changed; rflow reconnects on the next try"


@asynccontextmanager
async def store_errors() -> AsyncIterator[None]:
    """Re-raise a failure of the store as its DatabaseError; everything else passes through."""
    try:
        yield
    except Exception as exc:
        error = store_error(exc)
        if error is None or error is exc:
            raise
        raise error from exc


def make_engine(url: str, busy_timeout_ms: int | None = None) -> AsyncEngine:
    busy_timeout_ms = busy_timeout_ms or BUSY_TIMEOUT_MS
    if url.startswith("sqlite"):
        db_path = url.split(":///", 1)[-1]
        if db_path and db_path != ":memory:" and not db_path.startswith("file:"):
            _make_folder(Path(db_path).parent)
            _keep_private(Path(db_path))
        engine = create_async_engine(url, connect_args={"timeout": busy_timeout_ms / 1000})
        _configure_sqlite(engine, busy_timeout_ms)
        return engine
    return create_async_engine(url, pool_pre_ping=True)


def _make_folder(folder: Path) -> None:
    try:
        if not folder.exists():
            folder.mkdir(parents=True, exist_ok=True)
            folder.chmod(0o700)  # the desk's folder is its owner's alone, whatever the umask
    except OSError as exc:
        raise DatabaseError(
            f"cannot create the folder {folder} for the database: {exc.strerror}. Pass --db with a path "
            "you may write to (or set RFLOW_DATABASE_URL, or database_url in the config file)"
        ) from exc


def _keep_private(db_file: Path) -> None:
    """The database and its -wal and -shm files readable by their owner only (0600): on one
    machine the file's permissions are the boundary between accounts (SECURITY.md). SQLite
    gives the -wal and -shm files the database file's mode; an older desk is tightened."""
    for path in (db_file, db_file.with_name(db_file.name + "-wal"), db_file.with_name(db_file.name + "-shm")):
        try:
            if path == db_file and not path.exists():
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            elif path.exists() and path.stat().st_uid == os.geteuid() and path.stat().st_mode & 0o077:
                path.chmod(0o600)
        except OSError:
            return  # a read-only or foreign file: opening it says what is wrong


def _lenient_text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def _configure_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # Let us issue BEGIN ourselves (the driver's implicit BEGIN is always DEFERRED).
        dbapi_connection.isolation_level = None
        # Text another tool stored as invalid UTF-8 reads with replacement characters instead
        # of failing every query that touches the row.
        dbapi_connection.driver_connection.text_factory = _lenient_text
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def db_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Calling the factory opens one database session (``async with open_db() as db``).

    Named apart from ``services.walks``, which is about walks.
    """
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def lock_first_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Database sessions whose every transaction takes the write lock first, for one-shot commands.

    On SQLite a transaction that reads and then writes fails at once ("database is locked")
    if another process wrote in between; one that starts with the lock waits for it
    (busy timeout) instead. PostgreSQL ignores the option.
    """
    return db_session_factory(engine.execution_options(**WRITE))


@asynccontextmanager
async def write_transaction(db: AsyncSession) -> AsyncIterator[AsyncSession]:
    """One unit of work holding the write lock from its first read; commits or rolls back.

    After a commit every object is detached with its attributes loaded, so what a
    service returns stays readable as a plain value even if a later unit rolls back.
    """
    if db.in_transaction():
        await db.commit()
    try:
        await db.connection(execution_options=WRITE)
        yield db
        await db.commit()
    except OperationalError as exc:
        await db.rollback()
        if "locked" in str(exc.orig) or "busy" in str(exc.orig):
            raise DatabaseError(BUSY_MESSAGE) from exc
        raise
    except BaseException:
        await db.rollback()
        raise
    db.expunge_all()


# --- migrations ---------------------------------------------------------------

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
HEAD_REVISION = "0014"


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        try:
            result = await conn.execute(text("SELECT version_num FROM alembic_version"))
        except Exception:
            return None
        row = result.first()
        return row[0] if row else None


def upgrade_schema(sync_conn, revision: str = "head") -> None:
    """Run the shipped Alembic scripts up to ``revision`` on this (sync) connection."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = sync_conn
    command.upgrade(cfg, revision)


def _sqlite_foreign_keys(sync_conn, on: bool) -> None:
    """``PRAGMA foreign_keys`` on the driver's connection, outside any transaction (it is a no-op
    inside one): SQLite's own advice for a migration that rebuilds a table others point at."""
    cursor = sync_conn.connection.cursor()
    cursor.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    cursor.close()


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to head. Alembic is imported only when there is work to do."""
    if await current_revision(engine) == HEAD_REVISION:
        return
    try:
        async with engine.connect() as conn:
            sqlite = engine.dialect.name == "sqlite"
            if sqlite:  # a table rebuilt by a migration must not cascade into its children
                await conn.run_sync(_sqlite_foreign_keys, False)
            try:
                async with conn.begin():
                    await conn.run_sync(upgrade_schema)
                    if sqlite and (await conn.exec_driver_sql("PRAGMA foreign_key_check")).first():
                        raise DatabaseError("the schema upgrade would break a link between rows; nothing was changed")
            finally:
                if sqlite:
                    await conn.run_sync(_sqlite_foreign_keys, True)
    except Exception as exc:
        if "permission denied" in str(exc) or "must be owner" in str(exc):
            raise DatabaseError(
                f"the database schema needs upgrading to {HEAD_REVISION} and this database role may not "
                "change it: run any rflow command once as the role that owns rflow's tables"
            ) from exc
        raise


def _engine_for(url: str) -> AsyncEngine:
    """``make_engine``, with a URL that cannot be used said in words (and its password masked)."""
    from rflow_tui.config import safe_url

    try:
        return make_engine(url)
    except DatabaseError:
        raise
    except ModuleNotFoundError as exc:
        raise DatabaseError(
            f"the driver for {safe_url(url)} is not installed ({exc.name}); "
            "for PostgreSQL: pip install 'rflow-tui[postgres]'"
        ) from exc
    except Exception as exc:
        raise DatabaseError(f"cannot use the database URL {safe_url(url)}: {safe_url(_cause(exc))}") from exc


async def open_store(url: str) -> tuple[AsyncEngine, async_sessionmaker[AsyncSession]]:
    """Create the engine, apply migrations, return it with the database-session factory."""
    engine = _engine_for(url)
    try:
        await migrate(engine)
    except Exception as exc:
        await engine.dispose()
        if isinstance(exc, DatabaseError):
            raise
        from rflow_tui.config import safe_url

        raise DatabaseError(f"cannot open the database at {safe_url(url)}: {exc}") from exc
    return engine, db_session_factory(engine)
