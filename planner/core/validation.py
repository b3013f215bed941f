"""Validators for values that cross a boundary (import, CLI, HTTP).

Each raises :class:`~planner.errors.InvalidInput` naming the field, the value and what was expected.
Patterns are applied with ``fullmatch``: ``$`` would also accept a trailing newline.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime
from typing import Any, TypeVar

from planner.clock import EARLIEST, LATEST, parse_instant
from planner.core.status import Channel, EngagementKind
from planner.errors import InvalidInput

_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)
_E164 = re.compile(r"\+[1-9][0-9]{7,14}")
#: The rules for an external id and a kind, as text for schemas that publish them (OpenAPI); a value
#: must match the whole pattern.
EXTERNAL_ID_PATTERN = r"[A-Za-z0-9_.:@-]{1,200}"
KIND_PATTERN = r"[a-z][a-z0-9_]{0,99}"
_EXTERNAL_ID = re.compile(EXTERNAL_ID_PATTERN)
_KIND = re.compile(KIND_PATTERN)
# A BCP 47 language tag's shape: language, then subtags (script, region, variant): 'pt-BR', 'zh-Hant-TW'.
_LOCALE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8}){0,4}")
# Attribute names templates can write as ``recipient.attributes.NAME``.
_ATTRIBUTE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
#: Custom attributes: at most this many bytes of JSON, nested at most this deep.
ATTRIBUTES_MAX_BYTES = 4096
ATTRIBUTES_MAX_DEPTH = 4

#: What no stored text may hold: NUL, which PostgreSQL's text and jsonb refuse (SQLite keeps it, so
#: the two databases would disagree), and the UTF-16 surrogates U+D800..U+DFFF, which have no UTF-8
#: form: a lone one (JSON's "\udfff") cannot be written to a database, a log or a JSON answer.
_UNFAITHFUL = re.compile("[\x00\ud800-\udfff]")
TEXT_EXPECTED = "text without NUL characters or lone surrogates (U+D800-U+DFFF)"
#: A key quoted in a field name is cut to this many characters.
_KEY_SHOWN = 40

T = TypeVar("T")

#: The largest id the store can hold: the id columns are INTEGER, 32 bits on PostgreSQL (SQLite's
#: are 64), so a larger id cannot exist, and sending one to PostgreSQL is an error, not a miss.
ID_MAX = 2**31 - 1


def text(value: T, field: str) -> T:
    """``value`` as it is when every string in it can be stored and shown faithfully: the value
    itself when it is a string, else every key and value of the objects and lists it nests, at any
    depth. :class:`InvalidInput` names the first string that cannot (``data.items[2].title``).

    The one text rule of every door (HTTP, import, CLI, webhooks, the testing kit), applied before
    anything is written, so both databases take or refuse the same text.
    """
    stack: list[tuple[Any, str]] = [(value, field)]
    while stack:  # a loop, not recursion: the depth is another rule's to refuse
        item, where = stack.pop()
        if isinstance(item, str):
            if _UNFAITHFUL.search(item):
                raise InvalidInput(where, item, TEXT_EXPECTED)
        elif isinstance(item, dict):
            children = []
            for key, child in item.items():
                if isinstance(key, str) and _UNFAITHFUL.search(key):
                    raise InvalidInput(where or "key", key, f"keys of {TEXT_EXPECTED}")
                children.append((child, _member(where, key)))
            stack.extend(reversed(children))
        elif isinstance(item, list | tuple):
            stack.extend(reversed([(child, f"{where}[{i}]") for i, child in enumerate(item)]))
    return value


def _member(where: str, key: Any) -> str:
    name = str(key) if len(str(key)) <= _KEY_SHOWN else f"{str(key)[:_KEY_SHOWN]}..."
    return f"{where}.{name}" if where else name


def require_str(value: Any, field: str, expected: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(field, value, expected)
    return text(value, field).strip()


def external_id(value: Any, field: str = "id") -> str:
    if not isinstance(value, str) or not _EXTERNAL_ID.fullmatch(value):
        raise InvalidInput(field, value, "1-200 characters of letters, digits and _ . : @ -")
    return value


def email(value: Any, field: str = "email") -> str:
    if not isinstance(value, str) or len(value) > 320 or not _EMAIL.fullmatch(value):
        raise InvalidInput(field, value, "an email address such as 'ann@example.com'")
    return value


def phone(value: Any, field: str = "phone") -> str:
    if not isinstance(value, str) or not _E164.fullmatch(value):
        raise InvalidInput(field, value, "an E.164 phone number such as '+12125550100'")
    return value


def channel(value: Any, field: str = "channel") -> Channel:
    try:
        return Channel(value)
    except ValueError:
        raise InvalidInput(field, value, "one of 'email', 'sms'") from None


def kind(value: Any, field: str = "kind") -> str:
    if not isinstance(value, str) or not _KIND.fullmatch(value):
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


def row_id(value: Any, field: str = "id") -> int:
    """A database id: a positive integer up to :data:`ID_MAX` (larger ones overflow the column)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= ID_MAX:
        raise InvalidInput(field, value, f"an id from 1 to {ID_MAX}")
    return value


def local_date(value: Any, field: str = "date") -> date:
    """A calendar date inside the instant window (a local day must convert to UTC instants)."""
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value.strip())
        except ValueError:
            raise InvalidInput(field, value, "a date YYYY-MM-DD") from None
    if not isinstance(value, date) or isinstance(value, datetime):
        raise InvalidInput(field, value, "a date YYYY-MM-DD")
    # One day of margin on each side: every zone's local day then stays inside the window.
    if not EARLIEST.date() < value < LATEST.date():
        raise InvalidInput(field, value.isoformat(), "a date from 1970-01-02 to 2199-12-31")
    return value


def locale(value: Any, field: str = "locale") -> str:
    if not isinstance(value, str) or len(value) > 35 or not _LOCALE.fullmatch(value):
        raise InvalidInput(field, value, "a BCP 47 language tag such as 'fr' or 'pt-BR'")
    return value


def attributes(value: Any, field: str = "attributes") -> dict[str, Any]:
    """Custom template attributes: a JSON object of named values, small and shallow."""
    if not isinstance(value, dict):
        raise InvalidInput(field, value, 'a JSON object such as {"plan": "pro", "first_name": "Ann"}')
    text(value, field)
    for name in value:
        if not isinstance(name, str) or not _ATTRIBUTE.fullmatch(name):
            raise InvalidInput(f"{field}.{name}", name, "a name of letters, digits and _ (not first), 1-64")
    _check_attribute_values(value, field, 1)
    size = len(json.dumps(value, ensure_ascii=False, allow_nan=False).encode())
    if size > ATTRIBUTES_MAX_BYTES:
        raise InvalidInput(field, f"{size} bytes", f"at most {ATTRIBUTES_MAX_BYTES} bytes of JSON")
    return value


def _check_attribute_values(value: Any, field: str, depth: int) -> None:
    if depth > ATTRIBUTES_MAX_DEPTH:
        raise InvalidInput(field, "(nested too deeply)", f"values nested at most {ATTRIBUTES_MAX_DEPTH} deep")
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        where = f"{field}.{key}" if isinstance(value, dict) else f"{field}[{key}]"
        if isinstance(item, dict | list):
            _check_attribute_values(item, where, depth + 1)
        elif isinstance(item, float) and not math.isfinite(item):
            raise InvalidInput(where, item, "a finite number")
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) > 2**53:
            raise InvalidInput(where, item, "an integer within ±2**53 (JSON's exact range)")
        elif item is not None and not isinstance(item, str | int | float | bool):
            raise InvalidInput(where, item, "a string, number, boolean, null, list or object")
