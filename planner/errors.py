"""The planner's error hierarchy.

Every error a user can cause says which field, which value, and what was expected, so that
a bad import line or a mistyped CLI option can be fixed without reading the source.
"""

from __future__ import annotations

from typing import Any

#: Echoed values are cut to this many characters (a 10 MB id must not become 10 MB of stderr).
SHOWN_CHARS = 80


def shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """``repr(value)``, cut to ``limit`` characters with the full length noted when it is longer."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value)} characters)"
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int over 4300 digits, a structure nested too deep
        return f"<{type(value).__name__} too large to show>"
    if len(text) > limit:
        return f"{text[:limit]}... ({len(text)} characters)"
    return text


class PlannerError(Exception):
    """Base class of every error the planner raises on purpose."""


class Unavailable(PlannerError):
    """A dependency (the database, Redis) cannot be reached or is not ready; HTTP 503.

    ``what`` names the dependency; ``hint`` says what to do about it (``planner db upgrade``).
    """

    def __init__(self, what: str, detail: str, hint: str = "") -> None:
        self.what = what
        self.detail = detail
        self.hint = hint
        super().__init__(f"{what} unavailable: {detail}" + (f"; {hint}" if hint else ""))


class ConfigurationError(PlannerError):
    """The settings (environment, planner.toml, CLI options) are unusable."""


class InvalidInput(PlannerError, ValueError):
    """A value at a boundary (import, CLI, HTTP) is invalid.

    ``field`` names the offending field, ``value`` is what was given and ``expected``
    says what would have been accepted.
    """

    def __init__(self, field: str, value: Any, expected: str) -> None:
        self.field = field
        self.value = value
        self.expected = expected
        super().__init__(f"{field}: {shown(value)} is invalid; expected {expected}")


class StateConflict(InvalidInput):
    """The target exists but its state does not allow the action: a delivery's status, a token name
    already taken, a dedup key used for another recipient (HTTP 409; the CLI exits 1)."""


class ConcurrentChange(StateConflict):
    """A concurrent request wrote the same record first, and this one lost the race twice (HTTP 409
    with Retry-After; sending the request again succeeds)."""

    def __init__(self, detail: str) -> None:
        super().__init__("request", detail, "no concurrent change of the same record; send it again")


class UnknownTimezoneError(InvalidInput):
    """A time zone name that is not in the tz database. Never silently treated as UTC."""

    def __init__(self, value: Any, field: str = "timezone") -> None:
        super().__init__(field, value, "an IANA time zone name such as 'America/New_York'")


class NaiveDatetimeError(InvalidInput):
    """A datetime without a UTC offset where an instant is required."""

    def __init__(self, value: Any, field: str = "datetime") -> None:
        super().__init__(field, value, "an aware timestamp with a UTC offset, e.g. '2026-03-01T13:05:00Z'")


class NotFound(PlannerError, LookupError):
    """A recipient, subscription or delivery that does not exist."""

    def __init__(self, what: str, ident: Any) -> None:
        self.what = what
        self.ident = ident
        super().__init__(f"{what} {shown(ident)} not found")


class TokenReused(PlannerError):
    """A provider callback whose signing token already signed another event: a replayed signature
    (the webhook answers 403)."""

    def __init__(self, event_id: str) -> None:
        self.event_id = event_id
        super().__init__(f"event {shown(event_id)}: its signing token already signed another event")
