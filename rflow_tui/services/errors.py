"""Domain errors. Each message is written for the person who will read it."""

from rflow_tui.domain.errors import DatabaseError, ServiceError

__all__ = [
    "AccessDenied",
    "DatabaseError",
    "InvalidState",
    "NotFound",
    "PayloadTooLarge",
    "ServiceError",
    "ValidationFailed",
]


class NotFound(ServiceError):
    pass


class AccessDenied(ServiceError):
    pass


class InvalidState(ServiceError):
    """The session is not active, or of the wrong kind for this operation."""


class ValidationFailed(ServiceError):
    pass


class PayloadTooLarge(ValidationFailed):
    pass
