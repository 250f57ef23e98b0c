"""Row-level security on PostgreSQL: a connected person's role sees only its own account.

Each person connects as their own database role, a member of ``PEOPLE_ROLE``. The
``user.db_role`` column binds a role to an rflow user, and counts only for a role recorded
(``ROLE_CLAIMS``) as made for that user's account; ``rflow_session_account()``
(SECURITY DEFINER, owned by the schema owner) turns ``session_user`` into that user's
account, and every account-scoped table gets a policy keeping rows to it; ``ROLE_RULES``
narrow what each role may write within it, and only ``rflow_audit_append``
(migrations/audit_sql.py) writes the audit trail. The definer functions search
``pg_temp`` last and name their schema, so a temporary table cannot redirect them. The schema
owner (the role that runs migrations) owns the tables and so is not subject to the
policies: it stays the desk's administrator.

A migration that adds an account-scoped table, or a column to one, calls
``protect_account_tables`` again (it is idempotent): people may UPDATE only the columns
granted when it last ran (column grants, so that no person may LOCK a shared table);
tests/test_identity.py fails for any table it missed.
"""

from __future__ import annotations

from rflow_tui.migrations.audit_sql import AUDIT_APPEND, audit_functions

PEOPLE_ROLE = "rflow_people"

# Tables no person's role writes: the server appends to the audit trail (``rflow_audit_append``);
# which account a database role was made for (``ROLE_CLAIMS``) only the DBA, or rflow on its
# connection, records.
ROLE_CLAIMS = "account_db_role"
SERVER_WRITTEN = frozenset({"audit_log", "audit_head", ROLE_CLAIMS})
# Written once by their author, never changed afterwards.
WRITE_ONCE = frozenset({"escalation_comment"})
REVIEWERS = "('owner', 'admin', 'engineer')"
ADMINS = "('owner', 'admin')"
_ME = "rflow_session_user_id()"
_MY_ROLE = "rflow_session_role()"
_OWN_ACTIVE_WALK = (
    "EXISTS (SELECT 1 FROM l1_walk_session w WHERE w.id = walk_step.walk_id AND w.account_id = walk_step.account_id"
    f" AND w.created_by_user_id = {_ME} AND w.status = 'active')"
)

# An outbox row is queued by the end of a walk its writer may end, for that walk's ticket,
# as new (pending, never tried), and only one per walk: a tech cannot queue words of their
# own onto a colleague's ticket, nor a second note onto their own.
# Its outcome is the walk's and its PSA the ticket's (migration 0014): an escalated walk's row
# queued as resolved would close the customer's ticket in the PSA.
_ENDED_WALK_OF_MINE = (
    "EXISTS (SELECT 1 FROM l1_walk_session w WHERE w.id = psa_outbox.session_id"
    " AND w.account_id = psa_outbox.account_id AND w.ticket_id = psa_outbox.ticket_id"
    " AND w.ticket_kind = 'psa' AND w.status IN ('resolved', 'escalated') AND psa_outbox.outcome = w.status"
    f" AND (w.created_by_user_id = {_ME} OR {_MY_ROLE} IN {REVIEWERS}))"
    " AND psa_outbox.psa_system = coalesce((SELECT t.psa_system FROM ticket t"
    " WHERE t.account_id = psa_outbox.account_id AND t.ticket_id = psa_outbox.ticket_id), '')"
)
_FIRST_OF_ITS_WALK = (
    "NOT EXISTS (SELECT 1 FROM psa_outbox o WHERE o.session_id = psa_outbox.session_id AND o.id <> psa_outbox.id)"
)
# Written in this same transaction: the walk a ticket's status, a notification or a proposal
# follows from is the one being ended now, not one that ended last week.
_THIS_TRANSACTION = "w.xmin = pg_current_xact_id()::xid"
# A notification a walker sends is the escalation of their own walk, escalated in this transaction.
# What it says of the escalation is the walk's (its ticket, its category, who escalated it), and
# it goes to the engineer side or the owner/admin group, as notify_escalation sends it (0014).
_NOTE = "notification.payload::jsonb"
_MY_ESCALATION_NOW = (
    "EXISTS (SELECT 1 FROM l1_walk_session w WHERE w.account_id = notification.account_id"
    f" AND w.id::text = ({_NOTE} ->> 'session_id')"
    f" AND w.created_by_user_id = {_ME} AND w.status = 'escalated' AND {_THIS_TRANSACTION}"
    f" AND {_NOTE} ->> 'ticket_id' = w.ticket_id"
    f" AND {_NOTE} ->> 'reason_category' IS NOT DISTINCT FROM w.escalation_reason_category"
    f" AND {_NOTE} ->> 'escalated_by_user_id' = {_ME}::text"
    f" AND jsonb_typeof({_NOTE} -> 'problem_summary') = 'string'"
    f" AND NOT EXISTS (SELECT 1 FROM jsonb_object_keys({_NOTE}) k WHERE k NOT IN"
    " ('session_id', 'ticket_id', 'problem_summary', 'reason_category', 'escalated_by_user_id', 'fallback')))"
    ' AND (notification.recipient_user_id IS NULL OR EXISTS (SELECT 1 FROM "user" r'
    f" WHERE r.id = notification.recipient_user_id AND r.account_role IN {REVIEWERS}))"
)
# A proposal a walker writes is the flywheel's: their own AI build, resolved as helpful now.
_MY_HELPFUL_BUILD_NOW = (
    "EXISTS (SELECT 1 FROM l1_walk_session w WHERE w.id = flowproposal.source_session_id"
    f" AND w.account_id = flowproposal.account_id AND w.created_by_user_id = {_ME} AND w.session_kind = 'ai_build'"
    f" AND w.status = 'resolved' AND w.helpful AND {_THIS_TRANSACTION})"
)
_MY_HELPFUL_PROPOSAL_WALK_NOW = (
    "EXISTS (SELECT 1 FROM l1_walk_session w WHERE w.flow_proposal_id = flowproposal.id"
    f" AND w.account_id = flowproposal.account_id AND w.created_by_user_id = {_ME} AND w.session_kind = 'proposal'"
    f" AND w.status = 'resolved' AND w.helpful AND {_THIS_TRANSACTION})"
)
# An alert is queued by the escalation of the writer's own walk, in the transaction that escalated
# it, for that walk's ticket, as new: nobody queues an alert for a colleague's walk, a walk not
# escalated or one escalated last week, and one per walk (a unique session_id).
# What the alert says is the walk's, its ticket's and the escalating person's, as
# enqueue_escalation writes it; only the tech's notes are theirs to send (0014). Otherwise a tech
# pages the engineers with a priority, subject, sender or link of their choosing.
_ALERT_FACTS = (
    "jsonb_build_object('ticket_id', w.ticket_id, 'subject', coalesce(t.subject, ''),"
    " 'priority', coalesce(t.priority, ''), 'reason_category', coalesce(w.escalation_reason_category, ''),"
    " 'reason', coalesce(w.escalation_reason, ''), 'escalated_by', coalesce(nullif(u.name, ''), u.email),"
    " 'link', coalesce(t.psa_url, ''))"
)
_ESCALATED_WALK_OF_MINE_NOW = (
    "EXISTS (SELECT 1 FROM l1_walk_session w"
    ' JOIN "user" u ON u.id = w.created_by_user_id'
    " LEFT JOIN ticket t ON t.account_id = w.account_id AND t.ticket_id = w.ticket_id"
    " WHERE w.id = alert_outbox.session_id"
    " AND w.account_id = alert_outbox.account_id AND w.ticket_id = alert_outbox.ticket_id"
    f" AND w.status = 'escalated' AND w.created_by_user_id = {_ME} AND {_THIS_TRANSACTION}"
    " AND alert_outbox.reason_category = coalesce(w.escalation_reason_category, '')"
    " AND alert_outbox.priority = coalesce(t.priority, '')"
    f" AND (alert_outbox.facts::jsonb - 'notes') = {_ALERT_FACTS})"
    " AND jsonb_typeof(alert_outbox.facts::jsonb -> 'notes') = 'array'"
    " AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(alert_outbox.facts::jsonb -> 'notes') n"
    " WHERE jsonb_typeof(n) <> 'string')"
)
# A walk names only a flow and a proposal of its own account (row-level security hides the rest).
_OWN_FLOW_AND_PROPOSAL = (
    "(flow_id IS NULL OR EXISTS (SELECT 1 FROM flow f WHERE f.id = l1_walk_session.flow_id))"
    " AND (flow_proposal_id IS NULL OR EXISTS (SELECT 1 FROM flowproposal p"
    " WHERE p.id = l1_walk_session.flow_proposal_id))"
)
# Columns a person's role may UPDATE (a column grant): delivering never rewrites what is delivered;
# a ticket keeps its id, kind, PSA and account (what its status may become: migration 0012's trigger).
UPDATABLE_COLUMNS = {
    # A flow version, once imported, is never rewritten: a new version is imported (audited) and
    # the old one stops being current. A proposal changes only as it is reviewed or validated.
    "flow": ("is_current",),
    "flowproposal": (
        "status",
        "target_flow_id",
        "reviewed_by_user_id",
        "reviewed_at",
        "review_reason",
        "validated_by_outcome",
    ),
    "psa_outbox": ("state", "attempts", "next_attempt_at", "last_error", "psa_note_id", "delivered_at"),
    "alert_outbox": ("state", "attempts", "next_attempt_at", "last_error", "sent_to", "delivered_at"),
    "ticket": (
        "subject",
        "body",
        "requester",
        "priority",
        "psa_url",
        "psa_updated_at",
        "status",
        "resolution_notes",
        "updated_at",
    ),
    # A notification is only ever marked read: what it says and to whom stays.
    "notification": ("read_at",),
    # A walk keeps its ticket, kind, flow, problem and start; the rest is its progress and end.
    "l1_walk_session": (
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
    ),
}

# Within the account, what each role may write (RESTRICTIVE: on top of the account policy),
# as the services say: (table, command, the rows it may touch, what they may become); an
# UPDATE's second condition defaults to its first, as PostgreSQL's does.
ROLE_RULES: tuple[tuple[str, str, str] | tuple[str, str, str, str], ...] = (
    # Only an owner makes, changes or unmakes an owner (services/users.py).
    ("user", "INSERT", f"{_MY_ROLE} IN {ADMINS} AND ({_MY_ROLE} = 'owner' OR account_role <> 'owner')"),
    ("user", "UPDATE", f"{_MY_ROLE} IN {ADMINS} AND ({_MY_ROLE} = 'owner' OR account_role <> 'owner')"),
    ("flow", "INSERT", f"{_MY_ROLE} IN {REVIEWERS} AND created_by_user_id = {_ME}"),
    ("flow", "UPDATE", f"{_MY_ROLE} IN {REVIEWERS}"),
    ("flowproposal", "INSERT", f"{_MY_ROLE} IN {REVIEWERS} OR (source = 'ai_realtime_l1' AND {_MY_HELPFUL_BUILD_NOW})"),
    # Reviewers review; a walker only marks the proposal their own walk on it just proved helpful
    # (what else may change: migration 0012's trigger).
    ("flowproposal", "UPDATE", f"{_MY_ROLE} IN {REVIEWERS} OR {_MY_HELPFUL_PROPOSAL_WALK_NOW}"),
    # Comments are the engineers' work on an escalation (services: Need.REVIEW).
    ("escalation_comment", "INSERT", f"author_user_id = {_ME} AND {_MY_ROLE} IN {REVIEWERS}"),
    # A ticket comes in open (add, import, a PSA pull); only a walk's end or a reopen moves it on.
    ("ticket", "INSERT", "status = 'open' AND resolution_notes IS NULL"),
    # A walk is born active, or escalated with no steps (escalating without a walk). A tech
    # changes only their own walk, and only while it is open (or in the transaction that wrote
    # it), or takes over a colleague's
    # active one (it becomes theirs); engineers work escalations. What a change to someone
    # else's walk may touch: migration 0012's trigger.
    (
        "l1_walk_session",
        "INSERT",
        f"created_by_user_id = {_ME} AND (status = 'active' OR (status = 'escalated' AND session_kind = 'adhoc'))"
        f" AND {_MY_ROLE} IN ('l1_tech', 'engineer')"
        f" AND acting_as IS NOT DISTINCT FROM (CASE WHEN {_MY_ROLE} = 'engineer' THEN 'l1_coverage' END)"
        f" AND {_OWN_FLOW_AND_PROPOSAL}",
    ),
    (
        "l1_walk_session",
        "UPDATE",
        f"{_MY_ROLE} IN {REVIEWERS} OR (status = 'active' AND (created_by_user_id = {_ME} OR {_MY_ROLE} = 'l1_tech'))"
        # escalating without a walk: the walk born escalated is finished in the transaction that wrote it
        f" OR (created_by_user_id = {_ME} AND xmin = pg_current_xact_id()::xid)",
        f"{_MY_ROLE} IN {REVIEWERS} OR created_by_user_id = {_ME}",
    ),
    # A step goes only into one's own active walk; marking it undone is the only update
    # (what may change is walk_step_sql.py's trigger), and nobody deletes one (no grant).
    ("walk_step", "INSERT", _OWN_ACTIVE_WALK),
    ("walk_step", "UPDATE", f"NOT undone AND {_OWN_ACTIVE_WALK}", f"undone AND {_OWN_ACTIVE_WALK}"),
    (
        "psa_outbox",
        "INSERT",
        "state = 'pending' AND attempts = 0 AND delivered_at IS NULL AND psa_note_id IS NULL"
        f" AND {_ENDED_WALK_OF_MINE} AND {_FIRST_OF_ITS_WALK}",
    ),
    # Any member delivers what is pending (rflow psa push); re-queueing a failed one is a
    # reviewer's (rflow psa retry); a delivered one stays as it was.
    (
        "psa_outbox",
        "UPDATE",
        f"state = 'pending' OR (state = 'failed' AND {_MY_ROLE} IN {REVIEWERS})",
        "state IN ('pending', 'delivered', 'failed')",
    ),
    # A walker's notification is their escalation's; engineers and admins tell people about their work.
    (
        "notification",
        "INSERT",
        f"{_MY_ROLE} IN {REVIEWERS} OR (kind = 'l1.session.escalated' AND {_MY_ESCALATION_NOW})",
    ),
    (
        "alert_outbox",
        "INSERT",
        "state = 'pending' AND attempts = 0 AND delivered_at IS NULL AND sent_to::text = '{}'"
        f" AND {_ESCALATED_WALK_OF_MINE_NOW}",
    ),
    # As the PSA outbox: any member delivers what is pending, a reviewer re-queues a failed
    # one, and a delivered or skipped one (no destination wanted it) stays as it was.
    (
        "alert_outbox",
        "UPDATE",
        f"state = 'pending' OR (state = 'failed' AND {_MY_ROLE} IN {REVIEWERS})",
        "state IN ('pending', 'delivered', 'failed', 'skipped')",
    ),
    (
        "notification",
        "UPDATE",
        f"recipient_user_id = {_ME} OR (recipient_user_id IS NULL AND {_MY_ROLE} IN {ADMINS})",
    ),
)


# rflow_session_<name>() -> the connected person's <column>
SESSION_FUNCTIONS = (
    ("account", "integer", "account_id"),
    ("role", "text", "account_role"),
    ("user_id", "integer", "id"),
)
STANDING = "rflow_session_standing"


def bound_person(schema: str, claims: bool) -> str:
    """FROM ... WHERE for the person the connected role is bound to: a binding counts only when
    the role was made for that person's account (a row of ``ROLE_CLAIMS``), so an owner who
    binds a role name of another account, or one nobody has made yet, captures nobody.
    ``claims`` False: before migration 0008 made that table."""
    if not claims:
        return f'{schema}."user" u WHERE u.db_role = session_user'
    return (
        f'{schema}."user" u JOIN {schema}.{ROLE_CLAIMS} c ON c.role_name = u.db_role '
        "AND c.account_id = u.account_id WHERE u.db_role = session_user"
    )


def _session_functions(schema: str, claims: bool) -> list[str]:
    """Who is connected, as the server knows it. SECURITY DEFINER with pg_temp searched last
    and every name schema-qualified, so a temporary table cannot stand in for ``user``."""
    statements = []
    safe = f"SECURITY DEFINER SET search_path = pg_catalog, {schema}, pg_temp"
    for name, kind, column in SESSION_FUNCTIONS:
        statements.append(
            f"""CREATE OR REPLACE FUNCTION {schema}.rflow_session_{name}() RETURNS {kind}
            LANGUAGE sql STABLE {safe} AS $$
                SELECT u.{column} FROM {bound_person(schema, claims)} AND u.is_active AND u.deleted_at IS NULL
            $$"""
        )
        statements.append(f"REVOKE ALL ON FUNCTION {schema}.rflow_session_{name}() FROM PUBLIC")
    # A deactivated or deleted person's role sees no rows, so it is told why (and only about itself).
    statements.append(
        f"""CREATE OR REPLACE FUNCTION {schema}.{STANDING}() RETURNS TABLE (email text, standing text)
        LANGUAGE sql STABLE {safe} AS $$
            SELECT u.email::text, CASE WHEN u.deleted_at IS NOT NULL THEN 'deleted'
                                     WHEN NOT u.is_active THEN 'deactivated' ELSE 'active' END
            FROM {bound_person(schema, claims)}
        $$"""
    )
    statements.append(f"REVOKE ALL ON FUNCTION {schema}.{STANDING}() FROM PUBLIC")
    return statements


# Created when the migrating role may (CREATEROLE); otherwise a DBA creates it (README).
_PEOPLE = f"""
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{PEOPLE_ROLE}') THEN
        CREATE ROLE {PEOPLE_ROLE} NOLOGIN;
    END IF;
EXCEPTION WHEN insufficient_privilege OR duplicate_object OR unique_violation THEN
    NULL;
END $$;
"""


def account_tables(conn) -> list[str]:
    """Every table of the current schema with an ``account_id`` column."""
    rows = conn.exec_driver_sql(
        "SELECT table_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND column_name = 'account_id' ORDER BY table_name"
    )
    return [row[0] for row in rows]


def _columns(conn, table: str) -> list[str]:
    from sqlalchemy import text

    rows = conn.execute(
        text(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = :table"
        ),
        {"table": table},
    )
    return [row[0] for row in rows]


def protect_account_tables(conn) -> None:
    """Policies, grants and the people role, for every account-scoped table there is now."""
    if conn.dialect.name != "postgresql":
        return
    schema = _schema(conn)
    claims = ROLE_CLAIMS in account_tables(conn)
    for statement in [*_session_functions(schema, claims), *audit_functions(schema)]:  # asyncpg: one at a time
        conn.exec_driver_sql(statement)
    conn.exec_driver_sql(_PEOPLE)
    has_people = conn.exec_driver_sql(f"SELECT 1 FROM pg_roles WHERE rolname = '{PEOPLE_ROLE}'").first()
    _policy(conn, "account", "id", writes=False)
    for table in account_tables(conn):
        _policy(conn, table, "account_id", writes=True)
    _role_rules(conn)
    if has_people:
        _grant(conn)


def _policy(conn, table: str, column: str, *, writes: bool) -> None:
    conn.exec_driver_sql(f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY')
    conn.exec_driver_sql(f'DROP POLICY IF EXISTS rflow_own_account ON "{table}"')
    check = f" WITH CHECK ({column} = rflow_session_account())" if writes else ""
    conn.exec_driver_sql(
        f'CREATE POLICY rflow_own_account ON "{table}" USING ({column} = rflow_session_account()){check}'
    )


def _role_rules(conn) -> None:
    """Within the account, each role writes only what its services allow (see ROLE_RULES)."""
    tables = set(account_tables(conn))
    for old in ("rflow_admins_insert_users", "rflow_admins_update_users"):  # before ROLE_RULES
        conn.exec_driver_sql(f'DROP POLICY IF EXISTS {old} ON "user"')
    for table, command, condition, *becomes in ROLE_RULES:
        if table not in tables:
            continue
        name = f"rflow_role_{command.lower()}"
        if command == "INSERT":
            clauses = f"WITH CHECK ({condition})"
        else:
            clauses = f"USING ({condition}) WITH CHECK ({becomes[0] if becomes else condition})"
        conn.exec_driver_sql(f'DROP POLICY IF EXISTS {name} ON "{table}"')
        conn.exec_driver_sql(f'CREATE POLICY {name} ON "{table}" AS RESTRICTIVE FOR {command} {clauses}')


def _grant(conn) -> None:
    """Least privilege: read and write rows (never delete; the audit trail only through the
    server's function; comments only added), no DDL."""
    from sqlalchemy import text

    schema = _schema(conn)
    conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA {schema} TO {PEOPLE_ROLE}")
    conn.exec_driver_sql(f"GRANT SELECT ON account, alembic_version TO {PEOPLE_ROLE}")
    for table in account_tables(conn):
        conn.exec_driver_sql(f'REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON "{table}" FROM {PEOPLE_ROLE}')
        if table in SERVER_WRITTEN:
            privileges = "SELECT"
        elif table in WRITE_ONCE:
            privileges = "SELECT, INSERT"
        else:
            # UPDATE by column, never on the table: a table-level UPDATE would also let a person
            # LOCK the table that every account shares (ACCESS EXCLUSIVE), stopping every desk.
            privileges = "SELECT, INSERT"
            have = _columns(conn, table)  # an earlier migration: columns added later are not there yet
            updatable = [c for c in UPDATABLE_COLUMNS.get(table, have) if c in have and c != "id"]
            columns = ", ".join(f'"{column}"' for column in updatable)
            conn.exec_driver_sql(f'GRANT UPDATE ({columns}) ON "{table}" TO {PEOPLE_ROLE}')
        conn.exec_driver_sql(f'GRANT {privileges} ON "{table}" TO {PEOPLE_ROLE}')
    # A sequence only for a table people insert into: the audit trail's ids are the server's to
    # take, and a person drawing them in a loop would stop every desk's audited writes.
    conn.exec_driver_sql(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {PEOPLE_ROLE}")
    for table in account_tables(conn):
        if table in SERVER_WRITTEN:
            continue
        sequence = conn.execute(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": f'{schema}."{table}"'}).scalar()
        if sequence:
            conn.exec_driver_sql(f"GRANT USAGE ON SEQUENCE {sequence} TO {PEOPLE_ROLE}")
    for name, _, _ in SESSION_FUNCTIONS:
        conn.exec_driver_sql(f"GRANT EXECUTE ON FUNCTION {schema}.rflow_session_{name}() TO {PEOPLE_ROLE}")
    conn.exec_driver_sql(f"GRANT EXECUTE ON FUNCTION {schema}.{STANDING}() TO {PEOPLE_ROLE}")
    conn.exec_driver_sql(f"GRANT EXECUTE ON FUNCTION {schema}.{AUDIT_APPEND} TO {PEOPLE_ROLE}")


def _schema(conn) -> str:
    name = conn.exec_driver_sql("SELECT current_schema()").scalar()
    return '"' + name.replace('"', '""') + '"'
