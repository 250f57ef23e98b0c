"""PostgreSQL's last word on ``walk_step``: a step, once written, is never changed except to be
marked undone, and never deleted, whoever asks (the schema owner included).

Row-level security (rls.py ``ROLE_RULES``) says *whose* steps a person may write (their own
active walk); this trigger says *what* a write may do, which a policy cannot: a policy
does not see the row as it was. A refusal is SQLSTATE 42501 (insufficient_privilege), as
a refused policy is.
"""

from __future__ import annotations

GUARD = "rflow_walk_step_guard"

_FUNCTION = """
CREATE OR REPLACE FUNCTION SCHEMA.rflow_walk_step_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, SCHEMA, pg_temp AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'a walk step is never deleted' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.id IS DISTINCT FROM OLD.id OR NEW.account_id IS DISTINCT FROM OLD.account_id
       OR NEW.walk_id IS DISTINCT FROM OLD.walk_id OR NEW.seq IS DISTINCT FROM OLD.seq
       OR OLD.undone OR NOT NEW.undone
       OR (NEW.step::jsonb - 'undone' - 'undone_at') IS DISTINCT FROM (OLD.step::jsonb - 'undone' - 'undone_at')
       OR NOT (NEW.step::jsonb @> '{"undone": true}'::jsonb)
       OR jsonb_typeof(NEW.step::jsonb -> 'undone_at') IS DISTINCT FROM 'string' THEN
        RAISE EXCEPTION 'a walk step is never changed, only marked undone once'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$
"""


def protect_walk_steps(conn) -> None:
    """The guard trigger on ``walk_step`` (idempotent). PostgreSQL only."""
    if conn.dialect.name != "postgresql":
        return
    schema = conn.exec_driver_sql("SELECT current_schema()").scalar()
    quoted = '"' + schema.replace('"', '""') + '"'
    conn.exec_driver_sql(_FUNCTION.replace("SCHEMA", quoted))
    conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {GUARD} ON walk_step")
    conn.exec_driver_sql(
        f"CREATE TRIGGER {GUARD} BEFORE UPDATE OR DELETE ON walk_step FOR EACH ROW EXECUTE FUNCTION {quoted}.{GUARD}()"
    )


def unprotect_walk_steps(conn) -> None:
    if conn.dialect.name != "postgresql":
        return
    conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {GUARD} ON walk_step")
    conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {GUARD}()")
