"""The audit chain written by PostgreSQL itself, so no person's role can forge a row.

``rflow_audit_append`` (SECURITY DEFINER) takes what happened from the app and fills in
everything that vouches for it: the account and actor of the connected role (the
session functions of migrations/rls.py, never the caller), the time, the row's place in the chain, its
hash, and the head. People's roles hold no INSERT or UPDATE on ``audit_log`` or
``audit_head``. The hash is ``domain.audit_chain``'s, computed here in SQL: JSON with
sorted keys, no spaces, non-ASCII as ``\\uXXXX``, exactly as Python's ``json.dumps`` writes
it, so ``rflow audit verify`` checks server-written rows like any other. The caller sends
``details`` in that canonical form; anything else is refused rather than stored unverifiable.

Only the schema's administrator (a role bound to no person that owns the tables, or a
superuser: the DBA, migrations) may name the account and actor itself.
"""

from __future__ import annotations

from rflow_tui.domain.audit_chain import GENESIS

AUDIT_APPEND = "rflow_audit_append(integer, integer, text, text, text, text)"

GENESIS_SQL = f"'{GENESIS}'"


def audit_functions(schema: str) -> list[str]:
    s = schema
    safe_path = f"SET search_path = pg_catalog, {s}, pg_temp"
    return [
        # A JSON string as Python's json.dumps(ensure_ascii=True) writes it.
        f"""CREATE OR REPLACE FUNCTION {s}.rflow_json_string(value text) RETURNS text
        LANGUAGE plpgsql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
        DECLARE
            result text := '"';
            ch text;
            code integer;
        BEGIN
            IF value ~ '^[ !#-\\[\\]-~]*$' THEN
                RETURN '"' || value || '"';
            END IF;
            FOR i IN 1 .. length(value) LOOP
                ch := substr(value, i, 1);
                code := ascii(ch);
                IF ch = '"' THEN result := result || '\\"';
                ELSIF ch = '\\' THEN result := result || '\\\\';
                ELSIF code = 10 THEN result := result || '\\n';
                ELSIF code = 13 THEN result := result || '\\r';
                ELSIF code = 9 THEN result := result || '\\t';
                ELSIF code = 8 THEN result := result || '\\b';
                ELSIF code = 12 THEN result := result || '\\f';
                ELSIF code < 32 OR code > 126 THEN
                    IF code > 65535 THEN
                        code := code - 65536;
                        result := result || '\\u' || lpad(to_hex(55296 + (code >> 10)), 4, '0')
                            || '\\u' || lpad(to_hex(56320 + (code & 1023)), 4, '0');
                    ELSE
                        result := result || '\\u' || lpad(to_hex(code), 4, '0');
                    END IF;
                ELSE result := result || ch;
                END IF;
            END LOOP;
            RETURN result || '"';
        END $$""",
        # Any JSON value with sorted keys and no spaces (numbers as written: the caller is Python).
        f"""CREATE OR REPLACE FUNCTION {s}.rflow_canonical_json(value json) RETURNS text
        LANGUAGE plpgsql IMMUTABLE {safe_path} AS $$
        DECLARE
            kind text := json_typeof(value);
            result text;
        BEGIN
            IF value IS NULL OR kind = 'null' THEN RETURN 'null'; END IF;
            IF kind = 'string' THEN RETURN {s}.rflow_json_string(value #>> '{{}}'); END IF;
            IF kind IN ('number', 'boolean') THEN RETURN btrim(value::text); END IF;
            IF kind = 'array' THEN
                SELECT '[' || coalesce(string_agg({s}.rflow_canonical_json(e), ',' ORDER BY n), '') || ']'
                INTO result FROM json_array_elements(value) WITH ORDINALITY AS t(e, n);
                RETURN result;
            END IF;
            SELECT '{{' || coalesce(string_agg({s}.rflow_json_string(k) || ':' || {s}.rflow_canonical_json(v),
                                              ',' ORDER BY k COLLATE "C"), '') || '}}'
            INTO result FROM json_each(value) AS t(k, v);
            RETURN result;
        END $$""",
        f"REVOKE ALL ON FUNCTION {s}.rflow_json_string(text), {s}.rflow_canonical_json(json) FROM PUBLIC",
        f"""CREATE OR REPLACE FUNCTION {s}.rflow_audit_append(
            p_account_id integer, p_actor_user_id integer, p_action text, p_target_type text,
            p_target_id text, p_details text
        ) RETURNS TABLE (id integer, account_id integer, seq integer, actor_user_id integer,
                         created_at timestamptz, prev_hash text, row_hash text)
        LANGUAGE plpgsql VOLATILE SECURITY DEFINER {safe_path} AS $$
        #variable_conflict use_column
        DECLARE
            v_account integer;
            v_actor integer;
            v_seq integer;
            v_prev text;
            v_at timestamptz := clock_timestamp();
            v_hash text;
            v_id integer;
        BEGIN
            v_account := {s}.rflow_session_account();
            v_actor := {s}.rflow_session_user_id();
            IF v_account IS NULL THEN
                IF EXISTS (SELECT 1 FROM {s}.rflow_session_standing()) OR NOT pg_has_role(
                    session_user, (SELECT c.relowner FROM pg_class c WHERE c.oid = '{s}.audit_log'::regclass), 'MEMBER'
                ) THEN
                    RAISE EXCEPTION 'only the database may write the audit log, for an active person'
                        USING ERRCODE = 'insufficient_privilege';
                END IF;
                v_account := p_account_id;  -- the schema's administrator: the DBA or a migration
                v_actor := p_actor_user_id;
            ELSIF p_account_id IS DISTINCT FROM v_account THEN
                RAISE EXCEPTION 'an audit entry belongs to the account of the person connected'
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            IF p_details IS NULL OR {s}.rflow_canonical_json(p_details::json) IS DISTINCT FROM p_details THEN
                RAISE EXCEPTION 'audit details must be canonical JSON (sorted keys, no spaces, ASCII)'
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            UPDATE {s}.audit_head h SET seq = h.seq + 1 WHERE h.account_id = v_account
            RETURNING h.seq, h.hash INTO v_seq, v_prev;
            IF v_seq IS NULL THEN
                INSERT INTO {s}.audit_head (account_id, seq, hash) VALUES (v_account, 1, {GENESIS_SQL});
                v_seq := 1;
                v_prev := {GENESIS_SQL};
            END IF;
            v_hash := encode(sha256(convert_to(
                '{{"account_id":' || v_account
                || ',"action":' || {s}.rflow_json_string(p_action)
                || ',"actor_user_id":' || coalesce(v_actor::text, 'null')
                || ',"created_at":"' || to_char(v_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || '"'
                || ',"details":' || p_details
                || ',"prev_hash":' || {s}.rflow_json_string(v_prev)
                || ',"seq":' || v_seq
                || ',"target_id":' || coalesce({s}.rflow_json_string(p_target_id), 'null')
                || ',"target_type":' || {s}.rflow_json_string(p_target_type)
                || '}}', 'UTF8')), 'hex');
            INSERT INTO {s}.audit_log AS a (account_id, seq, actor_user_id, action, target_type, target_id,
                                            details, created_at, prev_hash, row_hash)
            VALUES (v_account, v_seq, v_actor, p_action, p_target_type, p_target_id, p_details::json, v_at,
                    v_prev, v_hash)
            RETURNING a.id INTO v_id;
            UPDATE {s}.audit_head h SET hash = v_hash WHERE h.account_id = v_account;
            RETURN QUERY SELECT v_id, v_account, v_seq, v_actor, v_at, v_prev, v_hash;
        END $$""",
        f"REVOKE ALL ON FUNCTION {s}.{AUDIT_APPEND} FROM PUBLIC",
    ]
