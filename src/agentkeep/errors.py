"""Domain errors. Driver errors are translated into these once, in ``db.service``.

Each error has a stable ``code`` (used in the API's JSON body and the CLI's exit code) and, where
one field is to blame, its name in ``field``.
"""

from __future__ import annotations


class AgentkeepError(Exception):
    """Base of every error agentkeep raises on purpose."""

    code = "error"
    exit_code = 1

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, str]:
        """The JSON body the API sends: ``{"code", "message", "field"?}``."""
        body = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


class ValidationError(AgentkeepError, ValueError):
    """The input is malformed: a bad id, a wrong enum value, a NUL byte, a missing field.

    Also a ``ValueError``, as bad input is in Python (and as pydantic's own error is)."""

    code = "validation_error"
    exit_code = 2


class TooLargeError(ValidationError):
    """The input exceeds a configured limit (content or metadata size, page size)."""

    code = "too_large"


class NotFoundError(AgentkeepError):
    """The thing asked for does not exist."""

    code = "not_found"
    exit_code = 3


class ConflictError(AgentkeepError):
    """The write contradicts what is stored: a duplicate name, a unique key taken."""

    code = "conflict"
    exit_code = 4


class IdempotencyConflictError(ConflictError):
    """A ``client_id`` used again for a different message: a retry must send what the first
    attempt sent."""

    code = "idempotency_conflict"


class StorageError(AgentkeepError):
    """The database failed or could not be reached."""

    code = "storage_error"
    exit_code = 5


class UnavailableError(StorageError):
    """The database cannot be reached right now."""

    code = "unavailable"


class StorageFullError(StorageError):
    """The database has no room left for the write (its disk is full); reads still work."""

    code = "storage_full"


class UnauthorizedError(AgentkeepError):
    """The request needs a valid API key and did not bring one."""

    code = "unauthorized"
    exit_code = 6


class ForbiddenError(AgentkeepError):
    """The request's API key is valid but may not do this (it needs an admin key)."""

    code = "forbidden"
    exit_code = 6
