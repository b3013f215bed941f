"""Finds adapter plugins through the ``planner.adapters`` entry-point group.

Entry points are loaded lazily: naming an adapter imports only that adapter, so an optional
dependency of one plugin never breaks the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import cast

from adapters.base import Adapter
from adapters.errors import AdapterConfigError
from adapters.options import options_from_env

ENTRY_POINT_GROUP = "planner.adapters"
_REQUIRED_ATTRIBUTES = ("name", "channels", "from_settings", "send", "close")


def available_adapters() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)}


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
