"""The one check of template data (what a delivery or a digest event gives its template).

The data must survive the database's JSON column and the API's response as it is: a JSON object,
nested at most :data:`MAX_DEPTH` deep (the response serializer gives up far below Python's
recursion limit, and no template needs more), of plain values (no NaN or Infinity, no integer
longer than Python converts) whose every string, key or value, follows the text rule
(:func:`planner.core.validation.text`), at most ``max_bytes`` of JSON.
"""

from __future__ import annotations

import json
from typing import Any

from planner.core.validation import text
from planner.errors import InvalidInput

#: Ad-hoc notifications' limit, the default; a digest event passes its own (smaller) one.
MAX_BYTES = 64 * 1024
MAX_DEPTH = 32


def check_template_data(data: Any, field: str = "data", *, max_bytes: int = MAX_BYTES) -> dict[str, Any]:
    """``data`` when it is acceptable template data; :class:`InvalidInput` naming ``field`` if not."""
    if not isinstance(data, dict):
        raise InvalidInput(field, data, "a JSON object")
    if nesting_depth(data) > MAX_DEPTH:
        raise InvalidInput(field, "(nested too deeply)", f"a JSON object nested at most {MAX_DEPTH} deep")
    text(data, field)
    try:
        size = len(json.dumps(data, allow_nan=False).encode())
    except (TypeError, ValueError, RecursionError):
        raise InvalidInput(field, data, "a JSON object of plain values (no NaN, no huge numbers)") from None
    if size > max_bytes:
        raise InvalidInput(field, f"{size} bytes", f"at most {max_bytes} bytes of JSON")
    return data


def nesting_depth(value: Any, give_up_past: int = MAX_DEPTH) -> int:
    """How deeply ``value`` nests lists and objects (a scalar is 0, ``{}`` is 1), without recursion,
    so no RecursionError; stops counting once past ``give_up_past``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level > give_up_past:
                break
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest
