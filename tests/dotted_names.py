"""Whether a dotted name a text mentions (``planner.store.claims.claim``) names something real."""

from __future__ import annotations

import importlib


def resolves(dotted: str) -> bool:
    """True when the longest importable prefix of ``dotted`` has the rest as attributes."""
    parts = dotted.rstrip(".").split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(target, name):
                return False
            target = getattr(target, name)
        return True
    return False
