"""Finds adapter plugins through the ``planner.adapters`` entry-point group.

Entry points are loaded lazily: naming an adapter imports only that adapter, so an optional
dependency of one plugin never breaks the others.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, cast

from adapters.base import Adapter
from adapters.errors import AdapterConfigError
from adapters.options import options_from_env

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

ENTRY_POINT_GROUP = "planner.adapters"
_REQUIRED_ATTRIBUTES = ("name", "channels", "from_settings", "send", "close")


def available_adapters() -> dict[str, EntryPoint]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)}


_DIST_FOLDER = re.compile(r"^(?P<name>[^-]+)(-[^/]*)?\.(dist|egg)-info$")


def adapter_entry_points() -> dict[str, str]:
    """name -> ``module:attribute`` of each installed adapter, as :func:`available_adapters` finds them,
    read from the distributions' ``entry_points.txt`` on ``sys.path``.

    For ``planner --help``: importing :mod:`importlib.metadata` costs about 50 ms, more than a
    third of the help's whole budget. Like it, the first distribution of a name on ``sys.path``
    wins; tests/adapters/test_registry.py checks that both give the same answer.
    """
    seen: set[str] = set()
    found: dict[str, str] = {}
    for folder in sys.path:
        try:
            entries = sorted(os.scandir(folder or "."), key=lambda entry: entry.name)
        except OSError:
            continue
        for entry in entries:
            match = _DIST_FOLDER.match(entry.name)
            if match is None:
                continue
            dist = re.sub(r"[-_.]+", "_", match["name"]).lower()
            if dist in seen:
                continue
            seen.add(dist)
            found.update(_group_entries(os.path.join(entry.path, "entry_points.txt")))
    return dict(sorted(found.items()))


def _group_entries(path: str) -> dict[str, str]:
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except OSError:
        return {}
    entries: dict[str, str] = {}
    section = None
    for line in lines:
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
        elif section == ENTRY_POINT_GROUP and "=" in line and not line.startswith(("#", ";")):
            name, value = line.split("=", 1)
            entries[name.strip()] = value.strip()
    return entries


def load_adapter_class(name: str) -> type[Adapter]:
    adapters = available_adapters()
    entry_point = adapters.get(name)
    if entry_point is None:
        raise AdapterConfigError(
            f"unknown adapter {name!r}; available adapters: {', '.join(adapters) or 'none installed'}",
            option="adapter",
        )
    try:
        loaded = entry_point.load()
    except Exception as exc:
        raise AdapterConfigError(
            f"adapter {name!r} ({entry_point.value}) failed to load: {type(exc).__name__}: {exc}",
            option="adapter",
        ) from exc
    missing = [attr for attr in _REQUIRED_ATTRIBUTES if not hasattr(loaded, attr)]
    if not isinstance(loaded, type) or missing:
        raise AdapterConfigError(
            f"adapter {name!r} ({entry_point.value}) is not an adapter class"
            + (f"; it lacks {', '.join(missing)}" if missing else ""),
            option="adapter",
        )
    return cast(type[Adapter], loaded)


def create_adapter(name: str, options: Mapping[str, str] | None = None) -> Adapter:
    """Build adapter ``name`` from ``options``, or from its ``PLANNER_<NAME>_*`` variables if None."""
    adapter_class = load_adapter_class(name)
    return adapter_class.from_settings(options_from_env(name) if options is None else options)
