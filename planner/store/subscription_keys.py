"""A subscription's deliveries as a range of the dedup key's index.

Every planned key is ``sub:<id>:<local date>[@HH:MM][:cancelled:<id>]``
(:func:`planner.core.planning.dedup_key_for`; an ad-hoc key may not start ``sub:``), so one
subscription's deliveries are the keys from ``sub:<id>:`` up to ``sub:<id>;`` (``;`` follows ``:``),
in local date order, and a date bound is the prefix with the date appended.

SQLite finds a subscription's deliveries this way instead of through an index on
``(subscription_id, local_date)``: that index held the same rows in the same order, and every
planned row wrote one more page of it (its keys are scattered over the history kept). PostgreSQL
keeps the index: there the key's order follows the database's collation, which need not be
byte order.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import String, cast, literal
from sqlalchemy.sql.elements import ColumnElement

from planner.core.planning import PLANNED_KEY_PREFIX
from planner.store.tables import DELIVERIES


def key_range(
    subscription: ColumnElement[Any], since: date | None = None, before: date | None = None
) -> list[ColumnElement[bool]]:
    """The conditions on ``delivery.dedup_key`` that select ``subscription``'s planned deliveries
    (an id, or an id column of the outer query) of local dates from ``since`` and before ``before``;
    the caller adds ``subscription_id`` and date conditions of its own for the rows read."""
    key = DELIVERIES.c.dedup_key
    stem = literal(PLANNED_KEY_PREFIX) + cast(subscription, String)
    low = stem + literal(":" if since is None else f":{since.isoformat()}")
    high = stem + literal(";" if before is None else f":{before.isoformat()}")
    return [key >= low, key < high]
