"""a ticket's status moves only as a walk's end (or a reopen) moves it; nobody rewrites another's walk

Revision ID: 0012
Revises: 0011

PostgreSQL only (SQLite's file is its boundary). Until now a tech's role could, by raw SQL,
resolve or escalate any ticket of the desk, rename it or turn it into a PSA ticket, and an
engineer's could rewrite a finished walk or the step note a tech was typing. Row-level
security says *which* rows a role writes; what a row may *become* needs the row as it was,
which only a trigger sees. This migration adds three, each schema-qualified with
``SET search_path = pg_catalog, <schema>, pg_temp`` (a temporary table or function cannot
stand in for what they read), run with the caller's rights (row-level security keeps what
they read to the caller's account), and applied only to roles row-level security applies
to (people: the schema owner, the DBA, stays the desk's administrator):

- ``rflow_ticket_status_guard`` (a constraint trigger checked at commit, so the order in
  which a transaction writes the walk and the ticket does not matter): a person who is not
  an owner, admin or engineer changes a ticket's status only as the services do:
  ``in_progress`` with their own walk on it started in this transaction; ``resolved`` or
  ``escalated`` from open with their own walk on it ending so in this transaction, none
  other active (the resolution notes are the walk's); ``open`` again by reopening a
  resolved or escalated ticket, or with their own walk on it abandoned in this transaction.
  A PSA ticket's status on the desk mirrors the PSA (``rflow psa pull``, any member): it
  moves only between ``open`` and ``resolved``, and an internal ticket's text is never
  rewritten (only a pull changes a PSA ticket's).
- ``rflow_proposal_guard``: a walker (not a reviewer) changes a proposal only to mark it
  validated, when their own walk on it ends helpful in this transaction (the role rule).
- ``rflow_walk_guard``: a change to a walk that is not the changer's own touches only the
  escalation's work (claimed, closed, outcome), or takes over an active walk (it becomes
  theirs, nothing else changes).

With them, rls.py's ``ROLE_RULES`` now say a walk is born active (or escalated with no
steps), a ticket comes in open, comments are engineers', a walker's notification is their
own escalation's and their proposal their own helpful AI build's (each written in the same
transaction), only those who may walk start walks, tagged as who they are, and only an
owner makes, changes or unmakes an owner; column grants keep a ticket's id, kind, PSA and
account, a walk's ticket, kind, flow, problem and start, and everything of a notification
but when it was read, as they were. A PSA ticket's change time is never set in the future (it would
blind ``rflow psa pull --watch``).
A refusal is SQLSTATE 42501 (insufficient_privilege), as a refused policy is.
"""

from alembic import op

from rflow_tui.migrations.rls import PEOPLE_ROLE, REVIEWERS, protect_account_tables

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

TICKET_GUARD = "rflow_ticket_status_guard"
WALK_GUARD = "rflow_walk_guard"

# A walk of the changer's on NEW's ticket, written by this transaction, in the state named.
_MY_WALK_NOW = """EXISTS (SELECT 1 FROM SCHEMA.l1_walk_session w
    WHERE w.account_id = NEW.account_id AND w.ticket_kind = NEW.ticket_kind AND w.ticket_id = NEW.ticket_id
      AND w.created_by_user_id = me AND w.status = {state} AND w.xmin = pg_catalog.pg_current_xact_id()::xid
      {more})"""
_SAME_NOTES = "AND w.resolution_notes IS NOT DISTINCT FROM NEW.resolution_notes"
_NONE_ACTIVE = """NOT EXISTS (SELECT 1 FROM SCHEMA.l1_walk_session a
    WHERE a.account_id = NEW.account_id AND a.ticket_kind = NEW.ticket_kind AND a.ticket_id = NEW.ticket_id
      AND a.status = 'active')"""

_TICKET_FUNCTION = f"""
CREATE OR REPLACE FUNCTION SCHEMA.{TICKET_GUARD}() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, SCHEMA, pg_temp AS $$
DECLARE
    me integer;
    texts text[] := ARRAY['subject', 'body', 'requester', 'priority', 'psa_url', 'psa_updated_at'];
    ok boolean;
BEGIN
    IF NOT row_security_active('SCHEMA.ticket'::regclass)
       OR SCHEMA.rflow_session_role() IN {REVIEWERS} THEN
        RETURN NULL;
    END IF;
    me := SCHEMA.rflow_session_user_id();
    IF NEW.ticket_kind = 'internal'
       AND EXISTS (SELECT 1 FROM unnest(texts) t WHERE to_jsonb(NEW) -> t IS DISTINCT FROM to_jsonb(OLD) -> t) THEN
        RAISE EXCEPTION 'only a PSA pull changes what a ticket says, and only a PSA ticket''s'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.psa_updated_at > now() + interval '1 day' THEN  -- would blind `rflow psa pull --watch`
        RAISE EXCEPTION 'a PSA ticket''s change time is never in the future' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.status IS NOT DISTINCT FROM OLD.status
       AND NEW.resolution_notes IS NOT DISTINCT FROM OLD.resolution_notes THEN
        RETURN NULL;
    END IF;
    IF NEW.ticket_kind <> 'internal' THEN
        ok := NEW.status IN ('open', 'resolved') AND NEW.resolution_notes IS NOT DISTINCT FROM OLD.resolution_notes;
    ELSIF NEW.status = 'in_progress' THEN
        ok := OLD.status = 'open' AND NEW.resolution_notes IS NOT DISTINCT FROM OLD.resolution_notes
              AND {_MY_WALK_NOW.format(state="'active'", more="")};
    ELSIF NEW.status = 'resolved' THEN
        ok := OLD.status IN ('open', 'in_progress') AND {_NONE_ACTIVE}
              AND {_MY_WALK_NOW.format(state="'resolved'", more=_SAME_NOTES)};
    ELSIF NEW.status = 'escalated' THEN
        ok := OLD.status IN ('open', 'in_progress') AND {_NONE_ACTIVE}
              AND NEW.resolution_notes IS NOT DISTINCT FROM OLD.resolution_notes
              AND {_MY_WALK_NOW.format(state="'escalated'", more="")};
    ELSIF NEW.status = 'open' THEN
        ok := NEW.resolution_notes IS NOT DISTINCT FROM OLD.resolution_notes
              AND (OLD.status IN ('resolved', 'escalated')
                   OR ({_NONE_ACTIVE} AND {_MY_WALK_NOW.format(state="'abandoned'", more="")}));
    ELSE
        ok := false;
    END IF;
    IF NOT ok THEN
        RAISE EXCEPTION 'ticket % may go from % to % only as a walk of yours ends it (or a reopen opens it)',
            NEW.ticket_id, OLD.status, NEW.status USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END $$
"""

# What a change to someone else's walk may touch: an escalation's work, or a take-over.
_WORK = "ARRAY['claimed_by_user_id', 'claimed_at', 'closed_by_user_id', 'closed_at', 'outcome', 'outcome_notes']"
_TAKE_OVER = "ARRAY['created_by_user_id', 'acting_as', 'version', 'last_step_at']"

_WALK_FUNCTION = f"""
CREATE OR REPLACE FUNCTION SCHEMA.{WALK_GUARD}() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, SCHEMA, pg_temp AS $$
DECLARE
    me integer;
    may text[];
BEGIN
    IF NOT row_security_active('SCHEMA.l1_walk_session'::regclass) THEN
        RETURN NEW;
    END IF;
    me := SCHEMA.rflow_session_user_id();
    IF OLD.created_by_user_id = me AND NEW.created_by_user_id = me THEN
        RETURN NEW;  -- one's own walk: the role rules say what may change
    END IF;
    IF OLD.status = 'active' AND NEW.status = 'active' AND NEW.created_by_user_id = me THEN
        may := {_TAKE_OVER};
    ELSE
        may := {_WORK};
    END IF;
    IF (to_jsonb(NEW) - may) IS DISTINCT FROM (to_jsonb(OLD) - may) THEN
        RAISE EXCEPTION 'walk % is not yours: only an escalation''s work changes it (or taking it over)', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$
"""


PROPOSAL_GUARD = "rflow_proposal_guard"

# A walker's change to a proposal (their helpful walk on it) marks it validated, nothing else.
_PROPOSAL_FUNCTION = f"""
CREATE OR REPLACE FUNCTION SCHEMA.{PROPOSAL_GUARD}() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, SCHEMA, pg_temp AS $$
BEGIN
    IF row_security_active('SCHEMA.flowproposal'::regclass) AND SCHEMA.rflow_session_role() NOT IN {REVIEWERS}
       AND ((to_jsonb(NEW) - 'validated_by_outcome') IS DISTINCT FROM (to_jsonb(OLD) - 'validated_by_outcome')
            OR NOT NEW.validated_by_outcome) THEN
        RAISE EXCEPTION 'a walk marks proposal % validated, and changes nothing else of it', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$
"""


def upgrade() -> None:
    conn = op.get_bind()
    protect_account_tables(conn)  # the new role rules and the ticket's column grant
    if conn.dialect.name != "postgresql":
        return
    schema = str(conn.exec_driver_sql("SELECT current_schema()").scalar())
    quoted = '"' + schema.replace('"', '""') + '"'
    conn.exec_driver_sql(_TICKET_FUNCTION.replace("SCHEMA", quoted))
    conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {TICKET_GUARD} ON ticket")
    conn.exec_driver_sql(
        f"CREATE CONSTRAINT TRIGGER {TICKET_GUARD} AFTER UPDATE ON ticket DEFERRABLE INITIALLY DEFERRED "
        f"FOR EACH ROW EXECUTE FUNCTION {quoted}.{TICKET_GUARD}()"
    )
    conn.exec_driver_sql(_PROPOSAL_FUNCTION.replace("SCHEMA", quoted))
    conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {PROPOSAL_GUARD} ON flowproposal")
    conn.exec_driver_sql(
        f"CREATE TRIGGER {PROPOSAL_GUARD} BEFORE UPDATE ON flowproposal "
        f"FOR EACH ROW EXECUTE FUNCTION {quoted}.{PROPOSAL_GUARD}()"
    )
    conn.exec_driver_sql(_WALK_FUNCTION.replace("SCHEMA", quoted))
    conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {WALK_GUARD} ON l1_walk_session")
    conn.exec_driver_sql(
        f"CREATE TRIGGER {WALK_GUARD} BEFORE UPDATE ON l1_walk_session "
        f"FOR EACH ROW EXECUTE FUNCTION {quoted}.{WALK_GUARD}()"
    )


def downgrade() -> None:
    """The triggers go; the role rules stay as rls.py says (every migration re-applies them)."""
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {TICKET_GUARD} ON ticket")
    conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {WALK_GUARD} ON l1_walk_session")
    conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {TICKET_GUARD}()")
    conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {WALK_GUARD}()")
    conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {PROPOSAL_GUARD} ON flowproposal")
    conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {PROPOSAL_GUARD}()")
    if conn.exec_driver_sql(f"SELECT 1 FROM pg_roles WHERE rolname = '{PEOPLE_ROLE}'").first():
        conn.exec_driver_sql(f"GRANT UPDATE ON ticket TO {PEOPLE_ROLE}")
