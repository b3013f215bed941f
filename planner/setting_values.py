"""How a setting's value is read: durations, retentions and JSON from the environment."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator

from planner.clock import parse_duration
from planner.errors import InvalidInput


def _duration(value: Any, *, allow_zero: bool = False) -> timedelta:
    try:
        return parse_duration(value, "duration", allow_zero=allow_zero)
    except InvalidInput as exc:
        raise ValueError(f"expected {exc.expected}") from None  # pydantic names the variable


def _lateness(value: Any) -> timedelta:
    return _duration(value, allow_zero=True)


def _a_day_or_more(value: Any) -> timedelta:
    duration = _duration(value)
    if duration < timedelta(days=1):
        # No retention is shorter: providers retry a callback for hours (forgetting it sooner would
        # apply a retry twice), and a delivery's history is what an operator reads the next morning.
        raise ValueError("expected a duration of at least '1d'")
    return duration


def from_json(value: Any) -> Any:
    """A JSON map or list from the environment; pydantic-settings' own decoding is switched off
    (``NoDecode``) so that a typo is reported here, with the value and an example."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f'not valid JSON ({exc.msg} at column {exc.colno}); expected JSON such as {{"kind": ...}}'
        ) from None


def list_or_json(value: Any) -> Any:
    """A JSON list, or the friendlier comma list: ``password_reset,login_code``."""
    if isinstance(value, str) and not value.strip().startswith("["):
        return [item.strip() for item in value.split(",") if item.strip()]
    return from_json(value)


#: A positive duration: '30s', '5m', '4h', '1d' or ISO 8601 ('PT4H').
Duration = Annotated[timedelta, BeforeValidator(_duration)]
#: A duration that may be zero (a margin that can be left out).
Margin = Annotated[timedelta, BeforeValidator(lambda value: _duration(value, allow_zero=True))]
Lateness = Annotated[timedelta, BeforeValidator(_lateness)]
Retention = Annotated[timedelta, BeforeValidator(_a_day_or_more)]
