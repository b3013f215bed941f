"""Keyset paging: a list is read in one stable order, and a page ends with a cursor naming its last row,
from which the next page starts. The cost of a page is the same on the first page and the millionth
(no offset to skip), and rows written meanwhile neither repeat nor vanish.

A cursor is opaque to clients (URL-safe base64 of the last row's sort key), so the sort key can
change without breaking a stored link: an unreadable one is refused, naming the field.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from planner.clock import parse_instant
from planner.errors import InvalidInput

#: The most rows one page holds, on every list of the API.
MAX_LIMIT = 1000
#: The largest id a cursor may name: a row id is a signed 64-bit integer on every database.
MAX_ROW_ID = 2**63 - 1
CURSOR_EXPECTED = "a cursor from the previous page (its Link header, rel=\"next\", or next_after)"


def check_limit(value: object, maximum: int = MAX_LIMIT, field: str = "limit") -> int:
    """``value`` when it is a whole number from 1 to ``maximum``; else an InvalidInput naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise InvalidInput(
            field, value, f"a whole number from 1 to {maximum}; page on with the cursor of the previous page"
        )
    return value


def encode_cursor(at: datetime, row_id: int) -> str:
    """The cursor after a row sorted by (instant, id)."""
    raw = json.dumps([at.isoformat(), row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_after(row: Mapping[str, Any]) -> str:
    """The cursor after a listed delivery: its ``scheduled_at`` (ISO 8601) and its id."""
    return encode_cursor(parse_instant(str(row["scheduled_at"]), "scheduled_at"), int(row["id"]))


def decode_cursor(text: object, field: str = "after") -> tuple[datetime, int]:
    """The (instant, id) a cursor names; InvalidInput when it is not one of :func:`encode_cursor`'s."""
    if not isinstance(text, str) or not 0 < len(text) <= 200:
        raise InvalidInput(field, text, CURSOR_EXPECTED)
    try:
        at, row_id = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if isinstance(row_id, bool) or not isinstance(row_id, int) or not isinstance(at, str):
            raise ValueError("not an (instant, id) pair")
        if not 0 <= row_id <= MAX_ROW_ID:  # a forged id no database column could hold
            raise ValueError("not a row id")
        return parse_instant(at, field), row_id
    except (ValueError, TypeError, binascii.Error, InvalidInput):
        raise InvalidInput(field, text, CURSOR_EXPECTED) from None
