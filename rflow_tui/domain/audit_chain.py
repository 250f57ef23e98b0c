"""The audit chain's hash: one canonical form of a row, hashed with sha256.

This is a stored format: every row's ``row_hash`` was computed with it, so a
change here breaks every existing chain. The content is the row's own fields
plus ``prev_hash`` (so each row vouches for the one before it), as JSON with
sorted keys and no spaces; ``created_at`` as UTC with microseconds.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64  # the "previous hash" of an account's first row
CHAINED_FIELDS = (
    "account_id",
    "seq",
    "actor_user_id",
    "action",
    "target_type",
    "target_id",
    "details",
    "created_at",
    "prev_hash",
)


def canonical_time(value: datetime) -> str:
    """UTC, microseconds, 'Z': what SQLite and PostgreSQL both give back for a stored value."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def plain_json(value: Any) -> Any:
    """``value`` as the JSON the store will hand back (enums as strings, anything odd as its str)."""
    return json.loads(json.dumps(value, default=str, ensure_ascii=False))


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, ASCII: the form hashed (and the form PostgreSQL's
    ``rflow_audit_append`` rebuilds in SQL, so the two must never differ)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def canonical(row: Any) -> bytes:
    """The bytes a row's hash is taken over; ``row`` is an AuditLog or anything with its fields."""
    content = {name: getattr(row, name) for name in CHAINED_FIELDS}
    content["created_at"] = canonical_time(content["created_at"])
    return canonical_json(content).encode("ascii")


def row_hash(row: Any) -> str:
    return hashlib.sha256(canonical(row)).hexdigest()
