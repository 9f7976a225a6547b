"""Domain errors. The API maps them to HTTP statuses; the voice and dialer edges log them per call."""


class DomainError(Exception):
    """Something the caller asked for cannot be done; the message says what and why."""


class NotFound(DomainError):
    pass


class Conflict(DomainError):
    pass


class InvalidInput(DomainError):
    pass
