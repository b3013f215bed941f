"""The retention of kept message copies (:mod:`planner.store.message_copies`)."""

from __future__ import annotations

from datetime import datetime

import structlog

from planner.app import App
from planner.core.wording import duration
from planner.store import message_copies as store

log = structlog.get_logger("planner.retention")

#: Copies dropped per transaction, and transactions per maintenance pass: each delete is short (a
#: worker's outcome writes never wait long behind it), and a pass ends even when months of copies
#: are due (the first pass after the retention was shortened): the next passes take the rest.
DROP_BATCH = 2000
DROP_BATCHES = 10


def drop_old_copies(app: App, now: datetime, *, batch: int = DROP_BATCH, batches: int = DROP_BATCHES) -> int:
    """The maintenance pass's retention of kept copies: those kept longer than
    PLANNER_STORED_MESSAGE_RETENTION are dropped, oldest first, in bounded batches; returns how many."""
    retention = app.settings.stored_message_retention
    dropped = 0
    for _ in range(batches):
        with app.sessions() as session, session.begin():
            count = store.drop_old_copies(session, now - retention, batch)
        dropped += count
        if count < batch:
            break
    if dropped:
        log.info(
            "kept message copies dropped past the retention", dropped=dropped, retention=duration(retention)
        )
    return dropped
