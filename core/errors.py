"""Errors whose text is safe to show to the person who typed the command.

Anything that is not a ``UserError`` is a bug: the dispatcher logs it with its traceback and answers
"something went wrong (ref …)". A ``UserError`` carries an already translated message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: The stable codes of typed errors: chat adapters turn them into replies, the HTTP API into
#: 422 / 404 / 409 / 409 / 403 / 503 (``internal`` is a bug, answered with a ref id).
ERROR_CODES = ("invalid", "not_found", "ambiguous", "conflict", "forbidden", "unavailable", "internal")


class UserError(Exception):
    """A problem with what the user asked; ``message`` is shown to them as it is."""

    code = "invalid"

    def __init__(self, message: str, *, show: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        #: A command line showing the record the error is about (the artist that already exists),
        #: which a chat reply may show below the message.
        self.show = show


class NotFound(UserError):
    code = "not_found"


class InvalidInput(UserError):
    code = "invalid"


class PermissionDenied(UserError):
    code = "forbidden"


class ConcurrentChange(UserError):
    """Someone else changed the record after this user looked at it; nothing was saved."""

    code = "conflict"


class Unavailable(UserError):
    """A service mona depends on (the queue, a platform, OBS) cannot be reached right now."""

    code = "unavailable"


@dataclass(frozen=True)
class Candidate:
    id: int
    label: str
    #: What replaces the ambiguous words in the command line when this one is chosen (``#id`` when empty).
    typed: str = ""


class Ambiguous(UserError):
    """A name matched several records: the reply offers them as choices instead of guessing."""

    code = "ambiguous"

    def __init__(self, message: str, candidates: Sequence[Candidate], ref: str, *, total: int | None = None) -> None:
        super().__init__(message)
        self.candidates = list(candidates)
        self.ref = ref
        #: How many records matched in all (``candidates`` may be the first few only).
        self.total = max(total or 0, len(self.candidates))


class FieldError(UserError):
    """Bad input in one field of a form (modal); adapters show it beside that field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
