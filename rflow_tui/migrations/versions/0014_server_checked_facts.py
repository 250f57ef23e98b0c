"""what a person's role writes for others to read says what the database says

Revision ID: 0014
Revises: 0013

PostgreSQL only (SQLite's file is its boundary). A hostile review after 0013 found a tech's
role, in the transaction that escalated their own walk, could queue rows that others act on
with words the walk never had:

- a PSA outbox row for an escalated walk marked ``resolved`` (delivering it closes the
  customer's ticket in the PSA), or for another PSA than the ticket's;
- an alert to the engineers with a priority, category, subject, sender or link of the
  tech's choosing (a "P1", "escalated by Olga Owner", a phishing link);
- an escalation notification naming another ticket, category or escalating person, or
  sent to a colleague tech.

The role rules (rls.py ``ROLE_RULES``) now require what the services derive to be the
walk's, its ticket's and the connected person's; only the tech's own words (a note's
transcript, an alert's notes, the problem summary) stay theirs. Also: a walk names only a
flow and a proposal of its own account; a flow is written by the person who imports it and
a version is never rewritten in place (only ``is_current`` changes, a column grant); a
proposal changes only as it is reviewed or validated, and a review is signed by the person
who makes it (``rflow_proposal_guard``); people may draw ids only from the sequences of
tables they insert into (not the audit trail's).
"""

import importlib

from alembic import op

from rflow_tui.migrations.rls import REVIEWERS, protect_account_tables

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

PROPOSAL_GUARD = "rflow_proposal_guard"

# A walker's change to a proposal (their helpful walk on it) marks it validated, nothing else;
# whoever changes who reviewed it names themselves.
_PROPOSAL_FUNCTION = f"""
CREATE OR REPLACE FUNCTION SCHEMA.{PROPOSAL_GUARD}() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, SCHEMA, pg_temp AS $$
BEGIN
    IF NOT row_security_active('SCHEMA.flowproposal'::regclass) THEN
        RETURN NEW;
    END IF;
    IF NEW.reviewed_by_user_id IS DISTINCT FROM OLD.reviewed_by_user_id
       AND NEW.reviewed_by_user_id IS DISTINCT FROM SCHEMA.rflow_session_user_id() THEN
        RAISE EXCEPTION 'proposal % is reviewed by whoever reviews it, not in another''s name', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF SCHEMA.rflow_session_role() NOT IN {REVIEWERS}
       AND ((to_jsonb(NEW) - 'validated_by_outcome') IS DISTINCT FROM (to_jsonb(OLD) - 'validated_by_outcome')
            OR NOT NEW.validated_by_outcome) THEN
        RAISE EXCEPTION 'a walk marks proposal % validated, and changes nothing else of it', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$
"""


def _quoted_schema(conn) -> str:
    schema = str(conn.exec_driver_sql("SELECT current_schema()").scalar())
    return '"' + schema.replace('"', '""') + '"'


def upgrade() -> None:
    conn = op.get_bind()
    protect_account_tables(conn)  # the new role rules, column grants and sequence grants
    if conn.dialect.name != "postgresql":
        return
    conn.exec_driver_sql(_PROPOSAL_FUNCTION.replace("SCHEMA", _quoted_schema(conn)))


def downgrade() -> None:
    """0012's proposal guard; the role rules and grants stay as rls.py says (0013's app needs
    no more: it never rewrote a flow or a proposal's content, nor drew an audit id)."""
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    earlier = importlib.import_module("rflow_tui.migrations.versions.0012_ticket_status_rules")
    conn.exec_driver_sql(earlier._PROPOSAL_FUNCTION.replace("SCHEMA", _quoted_schema(conn)))
