"""Validators for values that cross a boundary (import, CLI, HTTP).

Each raises :class:`~planner.errors.InvalidInput` naming the field, the value and what was expected.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from planner.clock import parse_instant
from planner.core.status import Channel, EngagementKind
from planner.errors import InvalidInput

_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
_E164 = re.compile(r"^\+[1-9][0-9]{7,14}$")
_EXTERNAL_ID = re.compile(r"^[A-Za-z0-9_.:@-]{1,200}$")
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,99}$")


def require_str(value: Any, field: str, expected: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(field, value, expected)
    return value.strip()


def external_id(value: Any, field: str = "id") -> str:
    if not isinstance(value, str) or not _EXTERNAL_ID.match(value):
        raise InvalidInput(field, value, "1-200 characters of letters, digits and _ . : @ -")
    return value


def email(value: Any, field: str = "email") -> str:
    if not isinstance(value, str) or len(value) > 320 or not _EMAIL.match(value):
        raise InvalidInput(field, value, "an email address such as 'ann@example.com'")
    return value


def phone(value: Any, field: str = "phone") -> str:
    if not isinstance(value, str) or not _E164.match(value):
        raise InvalidInput(field, value, "an E.164 phone number such as '+12125550100'")
    return value


def channel(value: Any, field: str = "channel") -> Channel:
    try:
        return Channel(value)
    except ValueError:
        raise InvalidInput(field, value, "one of 'email', 'sms'") from None


def kind(value: Any, field: str = "kind") -> str:
    if not isinstance(value, str) or not _KIND.match(value):
        raise InvalidInput(field, value, "a notification kind in snake_case, e.g. 'daily_brief'")
    return value


def engagement_event(value: Any, field: str = "event") -> EngagementKind:
    try:
        return EngagementKind(value)
    except ValueError:
        raise InvalidInput(field, value, "one of 'opened', 'clicked', 'replied'") from None


def instant(value: Any, field: str = "at") -> datetime:
    if not isinstance(value, str):
        raise InvalidInput(field, value, "an ISO-8601 timestamp with an offset, e.g. '2026-03-01T13:05:00Z'")
    return parse_instant(value, field)
