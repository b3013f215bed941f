"""RQ job entry points. RQ imports these by name, so they find their dependencies here.

The worker process installs its :class:`~planner.delivery.Deliverer` with :func:`install`; a process
that runs a job without one (a plain ``rq worker``) builds it from the settings once.
"""

from __future__ import annotations

import threading
from dataclasses import asdict
from typing import Any

from planner.delivery.deliverer import Deliverer

_deliverer: Deliverer | None = None
_lock = threading.Lock()


def install(deliverer: Deliverer | None) -> None:
    global _deliverer
    with _lock:
        _deliverer = deliverer


def current() -> Deliverer:
    global _deliverer
    with _lock:
        if _deliverer is None:
            from planner.app import App
            from planner.operations.worker import build_deliverer
            from planner.settings import Settings

            _deliverer = build_deliverer(App(Settings()))
        return _deliverer


def deliver_batch(delivery_ids: list[int]) -> dict[str, Any]:
    """Send a batch of deliveries; each is claimed, sent and recorded on its own."""
    return asdict(current().deliver_batch(delivery_ids))
