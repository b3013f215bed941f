"""JSON objects as every door reads them: each key once.

``json.loads`` keeps the last of two equal keys, so ``{"kind": "a", "kind": "b"}`` would mean
whatever the parser happened to do; the importer, the HTTP API's bodies and the CLI's ``--data``
refuse it instead, with this one hook.
"""

from __future__ import annotations

from typing import Any

from planner.errors import InvalidInput, shown


def repeated(key: str) -> str:
    """What a repeated key's error expects (it names the key: some doors report only the value)."""
    return f"each key once per object ({shown(key, 40)} repeats)"


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads(..., object_pairs_hook=unique_keys)``: the object, or InvalidInput naming the key."""
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise InvalidInput(key, value, repeated(key))
        obj[key] = value
    return obj
