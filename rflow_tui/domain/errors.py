"""The base of every refusal rflow shows as it is, below every layer that raises one.

The store (``db``) and the services both raise these; keeping the base here lets
``db`` stay below ``services`` instead of importing from it.
"""


class ServiceError(Exception):
    """Base for refusals the UI and CLI show as they are. Each message is written for its reader."""


class DatabaseError(ServiceError):
    """The store cannot be opened or used; the message says what to do."""


class StoreUnavailable(DatabaseError):
    """The connection was refused or lost; the pool reconnects on the next call (pre-ping)."""


class StoreConflict(DatabaseError):
    """The store refused a change that clashes with a constraint (usually another window's change)."""


class StoreFull(DatabaseError):
    """The disk that holds the store is full: reconnecting will not help, freeing space will."""


class StoreReadOnly(DatabaseError):
    """The store may be read but not written (a read-only file, folder, mount or role)."""
