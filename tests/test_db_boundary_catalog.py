"""The shared PostgreSQL is the boundary, read from the catalog: what every person's role may do
to every table, sequence and function, and how every function that runs for them finds names.

These tests enumerate the schema instead of naming what exists today, so a table, sequence,
function or view added later without its rules fails here until rls.py (or its migration)
says what people may do with it. Each role kind a desk has (tech, engineer, admin, owner, a
deactivated person, a role bound to nobody) is asked, since a person's rights are the union
of their own grants and ``rflow_people``'s.
"""

from __future__ import annotations

from uuid import uuid4

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from rflow_tui.migrations.rls import PEOPLE_ROLE
from rflow_tui.services.users import update_user
from tests.test_identity import as_role, person

pytestmark = pytest.mark.postgres_only

ROWS = {"SELECT"}
ADDS = {"SELECT", "INSERT"}
# Per table: the table-level privileges people hold, and the columns they may UPDATE. No person
# deletes, truncates, references or triggers anything; the audit trail and whose role is whose
# are written only by the server (and the DBA).
PRIVILEGES: dict[str, tuple[set[str], set[str]]] = {
    "account": (ROWS, set()),
    "alembic_version": (ROWS, set()),
    "account_db_role": (ROWS, set()),
    "audit_log": (ROWS, set()),
    "audit_head": (ROWS, set()),
    "escalation_comment": (ADDS, set()),
    "flow": (ADDS, {"is_current"}),
    "flowproposal": (
        ADDS,
        {"status", "target_flow_id", "reviewed_by_user_id", "reviewed_at", "review_reason", "validated_by_outcome"},
    ),
    "notification": (ADDS, {"read_at"}),
    "ticket": (
        ADDS,
        {
            "subject",
            "body",
            "requester",
            "priority",
            "psa_url",
            "psa_updated_at",
            "status",
            "resolution_notes",
            "updated_at",
        },
    ),
    "user": (
        ADDS,
        {
            "account_id",
            "email",
            "name",
            "account_role",
            "coverage",
            "is_active",
            "created_at",
            "deleted_at",
            "os_login",
            "db_role",
        },
    ),
    "l1_walk_session": (
        ADDS,
        {
            "created_by_user_id",
            "acting_as",
            "status",
            "step_count",
            "pending_node",
            "current_node_id",
            "walk_notes",
            "step_note_draft",
            "helpful",
            "resolution_notes",
            "escalation_reason",
            "escalation_reason_category",
            "last_step_at",
            "resolved_at",
            "version",
            "claimed_by_user_id",
            "claimed_at",
            "closed_by_user_id",
            "closed_at",
            "outcome",
            "outcome_notes",
        },
    ),
    # The trigger (walk_step_sql.py) lets an UPDATE only mark a step undone.
    "walk_step": (ADDS, {"account_id", "walk_id", "seq", "step", "undone"}),
    "psa_outbox": (ADDS, {"state", "attempts", "next_attempt_at", "last_error", "psa_note_id", "delivered_at"}),
    "alert_outbox": (ADDS, {"state", "attempts", "next_attempt_at", "last_error", "sent_to", "delivered_at"}),
}
SERVER_WRITTEN = ("audit_log", "audit_head", "account_db_role")
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
# What people may call: who they are, how they stand, and the audit trail's one door.
CALLABLE = {
    "rflow_session_account()",
    "rflow_session_role()",
    "rflow_session_user_id()",
    "rflow_session_standing()",
    "rflow_audit_append(integer,integer,text,text,text,text)",
}


def dba_dsn(db_url: str) -> str:
    return make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False)


async def people_roles(db, db_url, desk, pg_server) -> dict[str, str]:
    """One role of each kind a desk has, by kind."""
    roles = {}
    for kind in ("tech", "engineer", "admin", "owner", "coverage"):
        url = await person(db, db_url, desk.owner, getattr(desk, kind))
        roles[kind] = make_url(url).username
    await update_user(db, actor=desk.owner, email=desk.coverage.email, active=False)
    roles["deactivated"] = roles.pop("coverage")
    roles["unbound"] = f"p_{uuid4().hex[:10]}"
    pg_server.admin(f"CREATE ROLE {roles['unbound']} LOGIN PASSWORD 'pw' IN ROLE {PEOPLE_ROLE}")
    return roles


async def test_every_definer_function_finds_names_only_in_the_catalog_and_its_schema_then_pg_temp(db_url, db, desk):
    """Issue 19, item 1: a SECURITY DEFINER function's search_path is exactly
    ``pg_catalog, <schema>, pg_temp``, and every other function rflow made (the triggers that
    judge a person's writes) searches pg_catalog first and pg_temp last; none is callable by
    PUBLIC, and no view runs with its owner's rights."""
    conn = await asyncpg.connect(dba_dsn(db_url))
    try:
        schema = await conn.fetchval("SELECT current_schema()")
        functions = await conn.fetch(
            "SELECT p.oid::regprocedure::text AS name, p.prosecdef, p.proconfig, "
            "pg_get_userbyid(p.proowner) AS owner, has_function_privilege('public', p.oid, 'EXECUTE') AS public, "
            "p.prorettype = 'trigger'::regtype AS is_trigger "
            "FROM pg_proc p WHERE p.pronamespace = current_schema()::regnamespace"
        )
        definers = {f["name"] for f in functions if f["prosecdef"]}
        assert {"rflow_session_account()", "rflow_audit_append(integer,integer,text,text,text,text)"} <= definers
        table_owner = await conn.fetchval("SELECT tableowner FROM pg_tables WHERE tablename = 'ticket'")
        for f in functions:
            paths = [c.split("=", 1)[1] for c in f["proconfig"] or [] if c.startswith("search_path=")]
            assert paths, f"{f['name']} sets no search_path"
            parts = [p.strip() for p in paths[0].split(",")]
            if f["prosecdef"]:
                assert parts == ["pg_catalog", schema, "pg_temp"], (f["name"], parts)
                assert not f["public"], f"{f['name']} runs with its owner's rights for anyone"
            else:
                assert parts[0] == "pg_catalog" and parts[-1] == "pg_temp", (f["name"], parts)
                assert not f["public"] or f["is_trigger"], f"{f['name']} is callable by anyone"
            assert f["owner"] == table_owner, f["name"]
        views = await conn.fetch(
            "SELECT c.relname, c.reloptions FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace "
            "AND c.relkind IN ('v', 'm')"
        )
        assert all("security_invoker=true" in (v["reloptions"] or []) for v in views), views
    finally:
        await conn.close()


async def test_every_table_grants_each_persons_role_exactly_its_rules(db_url, db, desk, pg_server):
    """Issue 19, items 2 and 3, from the catalog: for every table in the schema, what each kind
    of person's role holds is exactly what PRIVILEGES says (a new table fails until it says),
    never DELETE, TRUNCATE, REFERENCES or TRIGGER, and nothing of INSERT, UPDATE or DELETE on the
    audit trail or the role claims; no person holds a grant of their own beside the group's."""
    roles = await people_roles(db, db_url, desk, pg_server)
    conn = await asyncpg.connect(dba_dsn(db_url))
    try:
        tables = {r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
        assert tables == set(PRIVILEGES), f"tables without stated rules: {tables ^ set(PRIVILEGES)}"
        for kind, role in roles.items():
            held: dict[str, set[str]] = {t: set() for t in tables}
            for table, privilege in await conn.fetch(
                "SELECT c.relname, p FROM pg_class c CROSS JOIN unnest($2::text[]) p "
                "WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') "
                "AND has_table_privilege($1, c.oid, p)",
                role,
                list(TABLE_PRIVILEGES),
            ):
                held[table].add(privilege)
            may_update: dict[str, set[str]] = {t: set() for t in tables}
            for table, column in await conn.fetch(
                "SELECT c.relname, a.attname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid "
                "WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') "
                "AND a.attnum > 0 AND NOT a.attisdropped AND has_column_privilege($1, c.oid, a.attnum, 'UPDATE')",
                role,
            ):
                may_update[table].add(column)
            for table, (allowed, updatable) in PRIVILEGES.items():
                assert held[table] == allowed, (kind, table, held[table])
                assert may_update[table] == updatable, (kind, table, may_update[table] ^ updatable)
                if table in SERVER_WRITTEN:
                    for p in ("INSERT", "UPDATE", "REFERENCES"):
                        assert not await conn.fetchval(
                            "SELECT has_any_column_privilege($1, $2, $3)", role, f'"{table}"', p
                        ), (kind, table, p)
        own = await conn.fetch(
            "SELECT grantee, table_name, privilege_type FROM information_schema.role_table_grants "
            "WHERE table_schema = current_schema() AND grantee = ANY($1::text[])",
            list(roles.values()),
        )
        assert own == []
    finally:
        await conn.close()


async def test_people_draw_ids_only_where_they_insert_and_call_only_the_servers_doors(db_url, db, desk, pg_server):
    """Sequences: USAGE (nextval) only for a table people insert into, never the audit trail's
    (drawing its ids in a loop would stop every desk's audited writes), and setval on none.
    Functions: people execute only the session functions and the audit writer."""
    roles = await people_roles(db, db_url, desk, pg_server)
    conn = await asyncpg.connect(dba_dsn(db_url))
    try:
        sequences = await conn.fetch(
            "SELECT s.oid::regclass::text AS name, d.refobjid::regclass::text AS owner_table FROM pg_class s "
            "JOIN pg_depend d ON d.objid = s.oid AND d.deptype IN ('a', 'i') AND d.classid = 'pg_class'::regclass "
            "WHERE s.relkind = 'S' AND s.relnamespace = current_schema()::regnamespace"
        )
        assert {s["owner_table"] for s in sequences} >= {"audit_log", "ticket", "walk_step"}
        functions = [
            r[0]
            for r in await conn.fetch(
                "SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace = current_schema()::regnamespace "
                "AND p.prorettype <> 'trigger'::regtype"
            )
        ]
        for kind, role in roles.items():
            for s in sequences:
                table = s["owner_table"].strip('"')
                usage = await conn.fetchval("SELECT has_sequence_privilege($1, $2, 'USAGE')", role, s["name"])
                assert usage == ("INSERT" in PRIVILEGES[table][0]), (kind, s["name"])
                assert not await conn.fetchval("SELECT has_sequence_privilege($1, $2, 'UPDATE')", role, s["name"])
            callable_ = {
                f for f in functions if await conn.fetchval("SELECT has_function_privilege($1, $2, 'EXECUTE')", role, f)
            }
            assert callable_ == CALLABLE, (kind, callable_ ^ CALLABLE)
        for role in roles.values():  # no objects of their own but temporary ones
            assert not await conn.fetchval("SELECT has_schema_privilege($1, current_schema(), 'CREATE')", role)
            assert not await conn.fetchval("SELECT has_database_privilege($1, current_database(), 'CREATE')", role)
    finally:
        await conn.close()
    unbound = await asyncpg.connect(as_role(db_url, roles["unbound"], "pw"))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await unbound.fetchval("SELECT nextval('audit_log_id_seq')")
    finally:
        await unbound.close()
