"""Route the service's structlog output into stdlib logging while kit services run.

Unconfigured structlog prints every event to stdout, so a simulated month would bury a failing
test's report under hundreds of "planner run finished" lines. Through stdlib logging, pytest's
log capture shows warnings and errors of a failing test (``--log-level=INFO`` shows the rest).
A project that configured structlog itself is left alone.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from structlog.typing import Processor

_lock = threading.Lock()
_users = 0
_ours: list[Processor] | None = None


def acquire() -> None:
    global _users, _ours
    import structlog

    with _lock:
        _users += 1
        if _users > 1 or structlog.is_configured():
            return
        _ours = [
            structlog.stdlib.filter_by_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            # Under the kit's frozen clock this is the simulated instant: what a reader wants.
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.KeyValueRenderer(key_order=["timestamp", "event"], drop_missing=True),
        ]
        structlog.configure(
            processors=_ours,
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
            cache_logger_on_first_use=False,
        )


def release() -> None:
    global _users, _ours
    import structlog

    with _lock:
        _users = max(0, _users - 1)
        if _users == 0 and _ours is not None:
            # Only undo our own configuration: a test may have configured structlog meanwhile.
            if structlog.get_config()["processors"] is _ours:
                structlog.reset_defaults()
            _ours = None
