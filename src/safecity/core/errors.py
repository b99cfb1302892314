"""Errors a person can act on: each says what went wrong and what to do about it.

Every domain raises these (or subclasses); the API maps them to 4xx answers and the CLI prints them
without a traceback.
"""

from __future__ import annotations


class SafeCityError(Exception):
    """Base of every error SafeCity reports to a person; `hint` says what to do next."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def to_dict(self) -> dict[str, str]:
        body = {"error": self.code, "detail": self.message}
        if self.hint:
            body["hint"] = self.hint
        return body

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class InvalidInput(SafeCityError):
    """The request, file or value is malformed."""

    status_code = 422
    code = "invalid_input"


class NotFound(SafeCityError):
    """The thing asked for does not exist."""

    status_code = 404
    code = "not_found"


class Conflict(SafeCityError):
    """The request clashes with the current state (a duplicate, a busy unit, a stale update)."""

    status_code = 409
    code = "conflict"


class Unauthorized(SafeCityError):
    """No valid credentials were given."""

    status_code = 401
    code = "unauthorized"


class Forbidden(SafeCityError):
    """The caller's role does not allow this."""

    status_code = 403
    code = "forbidden"


class TooManyRequests(SafeCityError):
    """The caller has been rate-limited."""

    status_code = 429
    code = "too_many_requests"


class Unavailable(SafeCityError):
    """A dependency (camera, disk, database, bus) cannot be reached right now."""

    status_code = 503
    code = "unavailable"
