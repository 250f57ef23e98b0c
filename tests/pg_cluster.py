"""A throwaway PostgreSQL cluster for the test session, started from the server binaries.

Why not a system server: CI and developers should need nothing running beforehand, and
tests must never touch a real desk's data. The cluster lives in a temporary directory,
listens on a free loopback port and a private socket directory, and runs with fsync,
full_page_writes and synchronous_commit off (a crash loses nothing we care about).
``initdb`` refuses to run as root, so under root the server runs as Debian's
``postgres`` user.

Each test gets its own database, copied from a template that was migrated once.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path

SUPERUSER = "rflow_admin"
SUPERUSER_PASSWORD = "rflow-test-admin"
UNPRIVILEGED_OS_USER = "postgres"

ENABLE_HINT = (
    "install the PostgreSQL server (Debian: apt-get install postgresql) and "
    "`pip install -e '.[test,postgres]'`, or set RFLOW_TEST_POSTGRES to a server URL "
    "the tests may create databases on"
)


class ClusterUnavailable(Exception):
    """No PostgreSQL can be had for the tests; the message says why and how to fix it."""


def find_bindir() -> Path:
    """Where ``initdb`` and ``pg_ctl`` live: RFLOW_PG_BINDIR, pg_config, Debian's layout, PATH."""
    candidates: list[str] = []
    if os.environ.get("RFLOW_PG_BINDIR"):
        candidates.append(os.environ["RFLOW_PG_BINDIR"])
    if shutil.which("pg_config"):
        result = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        if result.returncode == 0:
            candidates.append(result.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    if shutil.which("initdb"):
        candidates.append(str(Path(shutil.which("initdb")).parent))
    for candidate in candidates:
        path = Path(candidate)
        if (path / "initdb").is_file() and (path / "pg_ctl").is_file():
            return path
    raise ClusterUnavailable(f"no PostgreSQL server binaries (initdb, pg_ctl) found: {ENABLE_HINT}")


def _version_key(path: str) -> float:
    try:
        return float(Path(path).parent.name)
    except ValueError:
        return 0.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Loop:
    """An event loop on its own thread, so sync and async tests alike can ask for databases."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="pg-admin", daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 120):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class Server:
    """A PostgreSQL server the tests may create databases and roles on.

    ``url(dbname, user, password)`` builds an rflow database URL; ``admin(sql)`` runs SQL as
    the superuser on the maintenance database; ``fresh_database()`` copies the migrated
    template. Copies are made ahead of need and dropped in the background: the server
    works on the other core while a test runs, so a test does not wait for either.
    """

    PREFETCH = 2

    def __init__(self, host: str, port: int, user: str, password: str | None, maintenance_db: str) -> None:
        self.host, self.port, self.user, self.password = host, port, user, password
        self.maintenance_db = maintenance_db
        self.template = f"rflow_template_{uuid.uuid4().hex[:8]}"
        self._loop = _Loop()
        self._conns: dict[str, object] = {}  # "now" for callers who wait, "later" for background work
        self._locks: dict[str, asyncio.Lock] = {}
        self._template_ready = False
        self._roles_before: set[str] | None = None  # never dropped, even if a test joins them to people
        self._ahead: collections.deque[concurrent.futures.Future] = collections.deque()
        self._pending: list[concurrent.futures.Future] = []

    # --- URLs and SQL ---------------------------------------------------------

    def url(self, dbname: str, user: str | None = None, password: str | None = None) -> str:
        user = user or self.user
        password = self.password if password is None and user == self.user else password
        auth = f"{user}:{password}" if password else user
        return f"postgresql+asyncpg://{auth}@{self.host}:{self.port}/{dbname}"

    def admin(self, sql: str, *args):
        """Run one statement as the superuser on the maintenance database; return its rows.
        It never waits behind the databases being made or dropped in the background."""
        return self._loop.run(self._admin("now", sql, *args))

    def _admin_later(self, sql: str) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(self._admin("later", sql), self._loop.loop)

    async def _admin(self, channel: str, sql: str, *args):
        import asyncpg

        lock = self._locks.setdefault(channel, asyncio.Lock())
        async with lock:  # one connection runs one statement at a time
            conn = self._conns.get(channel)
            if conn is None or conn.is_closed():
                conn = self._conns[channel] = await asyncpg.connect(
                    host=self.host,
                    port=self.port,
                    user=self.user,
                    password=self.password,
                    database=self.maintenance_db,
                )
            return await conn.fetch(sql, *args)

    # --- databases ------------------------------------------------------------

    def fresh_database(self) -> str:
        """A new database at the schema head, copied from the template (migrated once)."""
        self._note_people()
        if not self._template_ready:
            self._build_template()
        while len(self._ahead) < self.PREFETCH + 1:
            name = new_name()
            future = self._admin_later(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}" STRATEGY FILE_COPY')
            future.db_name = name  # type: ignore[attr-defined]
            self._ahead.append(future)
        future = self._ahead.popleft()
        future.result(120)
        return future.db_name  # type: ignore[attr-defined]

    def empty_database(self) -> str:
        """A new database with no schema at all (for migration tests)."""
        self._note_people()
        name = new_name()
        self.admin(f'CREATE DATABASE "{name}"')
        return name

    def dispose_database(self, name: str) -> None:
        """Drop a test's database, and the person roles it made (roles are cluster-wide: the
        next test must not find them). Roles that existed before this session stay."""
        new_people = self.people() - (self._roles_before or set())
        if not new_people:
            return self.drop_database(name)
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for role in sorted(new_people):
            self.admin(f'DROP ROLE IF EXISTS "{role}"')

    def people(self) -> set[str]:
        """The roles in rflow's people group (see rflow_tui/migrations/rls.py)."""
        from rflow_tui.migrations.rls import PEOPLE_ROLE

        rows = self.admin(
            "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
            "JOIN pg_roles r ON r.oid = m.member WHERE g.rolname = $1",
            PEOPLE_ROLE,
        )
        return {row[0] for row in rows}

    def _note_people(self) -> None:
        if self._roles_before is None:
            self._roles_before = {row[0] for row in self.admin("SELECT rolname FROM pg_roles")}

    def drop_database(self, name: str) -> None:
        """Drop in the background (connections still open are ended); close() waits for it."""
        self._pending = [f for f in self._pending if not f.done()]
        self._pending.append(self._admin_later(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def _build_template(self) -> None:
        from rflow_tui.db import open_store

        self.admin(f'CREATE DATABASE "{self.template}"')

        async def migrate() -> None:
            engine, _ = await open_store(self.url(self.template))
            await engine.dispose()

        self._loop.run(migrate())
        self.admin(f'ALTER DATABASE "{self.template}" WITH IS_TEMPLATE true')
        self._template_ready = True

    def quiesce(self) -> None:
        """Let background creates and drops finish and let go of the admin connection."""
        concurrent.futures.wait([*self._ahead, *self._pending], timeout=120)
        for conn in self._conns.values():
            with contextlib.suppress(Exception):  # the server is already gone; nothing to say goodbye to
                self._loop.run(conn.close(timeout=5))
        self._conns.clear()

    def close(self, tidy: bool = True) -> None:
        """Drop what this session made (a shared server keeps nothing of ours), then disconnect."""
        if tidy:
            while self._ahead:
                self.drop_database(self._ahead.popleft().db_name)  # type: ignore[attr-defined]
            concurrent.futures.wait(self._pending, timeout=120)
            if self._template_ready:
                self.admin(f'ALTER DATABASE "{self.template}" WITH IS_TEMPLATE false')
                self.admin(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')
        self.quiesce()
        self._loop.close()


def new_name() -> str:
    return f"rflow_test_{uuid.uuid4().hex[:12]}"


class Cluster(Server):
    """A private cluster: initdb into a temp dir, pg_ctl start on a free port, gone at close().

    ``stop()`` and ``start()`` restart the same server on the same port, for tests of what
    the app does while its database is away.
    """

    def __init__(self) -> None:
        self.bindir = find_bindir()
        self.os_user = UNPRIVILEGED_OS_USER if os.geteuid() == 0 else None
        if self.os_user is not None:
            try:
                self._pw = pwd.getpwnam(self.os_user)
            except KeyError:
                raise ClusterUnavailable(
                    f"the tests run as root, and initdb refuses root, but there is no "
                    f"'{self.os_user}' OS user to run the server as: {ENABLE_HINT}"
                ) from None
        self.root = Path(tempfile.mkdtemp(prefix="rflow-pg-", dir="/tmp" if self.os_user else None))
        self.running = False
        try:
            self._init_and_start()
        except BaseException:
            self._discard()
            raise

    def _init_and_start(self) -> None:
        self.data = self.root / "data"
        self.sockets = self.root / "sock"
        self.sockets.mkdir()
        pwfile = self.root / "pwfile"
        pwfile.write_text(SUPERUSER_PASSWORD + "\n")
        if self.os_user is not None:
            for path in (self.root, self.sockets, pwfile):
                os.chown(path, self._pw.pw_uid, self._pw.pw_gid)
        port = free_port()
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--no-sync",
            "--no-instructions",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        )
        self.options = " ".join(
            [
                f"-p {port}",
                f"-k {self.sockets}",
                "-c listen_addresses=127.0.0.1",
                "-c fsync=off",
                "-c full_page_writes=off",
                "-c synchronous_commit=off",
                "-c max_connections=200",
                "-c shared_buffers=64MB",
                "-c wal_level=minimal",
                "-c max_wal_senders=0",
                "-c max_wal_size=1GB",
                "-c checkpoint_timeout=1h",
            ]
        )
        super().__init__("127.0.0.1", port, SUPERUSER, SUPERUSER_PASSWORD, "postgres")
        self.start()

    def start(self) -> None:
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-o",
            self.options,
            "-w",
            "-t",
            "60",
            "start",
        )
        self.running = True

    def stop(self) -> None:
        """A clean shutdown, as an operator's restart would do; databases made so far survive it."""
        self.quiesce()
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        self.running = False

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bindir / program), *args]
        if self.os_user is not None:
            command = ["runuser", "-u", self.os_user, "--", *command]
        result = subprocess.run(
            command, capture_output=True, text=True, cwd=self.root, env={**os.environ, "LC_ALL": "C.UTF-8"}
        )
        if result.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise ClusterUnavailable(f"{program} failed ({result.returncode}): {result.stderr.strip()}\n{tail}".strip())

    def close(self) -> None:
        try:
            super().close(tidy=False)  # the whole cluster goes; no point dropping databases one by one
        finally:
            self._discard()

    def _discard(self) -> None:
        if self.running:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            self.running = False
        shutil.rmtree(self.root, ignore_errors=True)


def external_server(url: str) -> Server:
    """RFLOW_TEST_POSTGRES: a server someone else runs (its maintenance database in the URL)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return Server(
        parsed.host or "127.0.0.1",
        parsed.port or 5432,
        parsed.username or "postgres",
        parsed.password,
        parsed.database or "postgres",
    )


def skip_or_fail(exc: ClusterUnavailable):
    """No server: skip the PostgreSQL test saying how to enable it, or fail it when
    RFLOW_REQUIRE_POSTGRES is set (CI sets it)."""
    import pytest

    if os.environ.get("RFLOW_REQUIRE_POSTGRES"):
        pytest.fail(f"RFLOW_REQUIRE_POSTGRES is set but PostgreSQL is unavailable: {exc}", pytrace=False)
    pytest.skip(f"PostgreSQL half skipped: {exc}")


def start_server() -> Server:
    """The server for this session: RFLOW_TEST_POSTGRES if set, else a private cluster."""
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        raise ClusterUnavailable(f"asyncpg is not installed: {ENABLE_HINT}") from None
    if os.environ.get("RFLOW_TEST_POSTGRES"):
        return external_server(os.environ["RFLOW_TEST_POSTGRES"])
    return Cluster()
