"""Domain errors: each carries a message a person can read; the web layer picks the status."""


class DomainError(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    """The thing does not exist, or is not the caller's (the two look the same)."""


class Conflict(DomainError):
    """The request is valid but the state does not allow it now."""


class PaymentRequired(DomainError):
    """The wallet cannot fund what was asked."""


class Invalid(DomainError):
    """The input is malformed."""


class IdempotencyMismatch(DomainError):
    """An idempotency key was reused for a different request."""


class Forbidden(DomainError):
    """The caller's role may not do this."""
