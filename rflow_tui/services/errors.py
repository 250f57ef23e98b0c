"""Domain errors. Each message is written for the person who will read it."""

from __future__ import annotations

from typing import Any

from rflow_tui.domain.errors import DatabaseError, ServiceError

__all__ = [
    "AccessDenied",
    "DatabaseError",
    "InvalidState",
    "NotFound",
    "PayloadTooLarge",
    "RightsChanged",
    "ServiceError",
    "StaleWalk",
    "ValidationFailed",
    "WalkInProgress",
]


class NotFound(ServiceError):
    pass


class AccessDenied(ServiceError):
    pass


class RightsChanged(AccessDenied):
    """The acting user's rights, read fresh from the store, no longer allow this, though
    they did when the user signed in (deactivated, coverage revoked, role changed).

    ``user`` is the fresh row (detached) and ``need`` what was refused, so the app can
    move to a screen the user may still use.
    """

    def __init__(self, message: str, *, user: Any, need: Any) -> None:
        super().__init__(message)
        self.user = user
        self.need = need


class InvalidState(ServiceError):
    """The session is not active, or of the wrong kind for this operation."""


class StaleWalk(InvalidState):
    """The caller decided on an older state of the walk: another window moved it on."""


class WalkInProgress(InvalidState):
    """The ticket already has an active walk: resume it or take it over, never start a second."""

    def __init__(self, message: str, *, session_id: int, owner_user_id: int, yours: bool) -> None:
        super().__init__(message)
        self.session_id = session_id
        self.owner_user_id = owner_user_id
        self.yours = yours


class ValidationFailed(ServiceError):
    pass


class PayloadTooLarge(ValidationFailed):
    pass
