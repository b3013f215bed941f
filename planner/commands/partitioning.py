"""PostgreSQL: the move of the delivery table and its timeline into monthly partitions, live.

The steps and why they are safe while planners and workers write are in
:mod:`planner.store.partition_copy`. Each batch is its own short transaction and its position is
saved with it, so the command can be stopped and run again: it resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from planner.app import App
from planner.store import partition_copy, retention
from planner.store.db import transaction

log = structlog.get_logger("planner.partitions")

_POSITION = "partition_copy:{table}"


def move_to_partitions(app: App, batch: int, progress: Callable[[str, int], None]) -> str:
    """Copy every delivery, then every timeline entry, then swap; returns what happened, in words."""
    with app.sessions() as session:
        state = partition_copy.state(session)
    if state == "partitioned":
        return "the delivery table is partitioned already"
    now = app.clock()
    if state == "single":
        with transaction(app.sessions) as session:
            partition_copy.prepare(session, now.date())
    copied = {table: _copy(app, table, batch, progress) for table in ("delivery",)}
    with transaction(app.sessions) as session:
        if not partition_copy.event_copy_started(session):
            partition_copy.start_event_copy(session)
    copied["delivery_event"] = _copy(app, "delivery_event", batch, progress)
    with transaction(app.sessions) as session:
        positions = {table: retention.position(session, _POSITION.format(table=table)) for table in copied}
        partition_copy.swap(session, positions)
        for table, last in positions.items():
            retention.set_position(session, _POSITION.format(table=table), last, now)
    log.info("delivery tables partitioned by month", last_ids=positions)
    return (
        f"partitioned: deliveries copied through id {positions['delivery']:,}, timeline entries through "
        f"id {positions['delivery_event']:,}. The old tables are now delivery_unpartitioned and "
        "delivery_event_unpartitioned: drop them once satisfied "
        "(DROP TABLE delivery_event_unpartitioned, delivery_unpartitioned)."
    )


def _copy(app: App, table: str, batch: int, progress: Callable[[str, int], None]) -> int:
    """Copy ``table``'s rows in id order from the saved position, a batch per transaction; returns
    the last id copied."""
    name = _POSITION.format(table=table)
    copied = 0
    while True:
        with transaction(app.sessions) as session:
            after = retention.position(session, name)
            last = partition_copy.copy_batch(session, table, after, batch)
            if last is None:
                return copied
            retention.set_position(session, name, last, app.clock())
        copied = last
        progress(table, last)
