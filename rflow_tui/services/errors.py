"""Domain errors. Each message is written for the person who will read it."""


class ServiceError(Exception):
    """Base for refusals the UI and CLI show as they are."""


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
