"""The timeline entries the delivery row implies (migration 0014): not stored, shown once, and
rows written before the migration shown as they were."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from planner.store.db import alembic_config, create_db_engine, upgrade
from planner.store.queries import timeline
from planner.store.tables import DELIVERIES, DELIVERY_EVENTS
from planner.store.types import UTCDateTime
from tests.servers import PostgresServer

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)

# The tables as revision 0013 had them (only the columns written here).
_DELIVERY = sa.table(
    "delivery",
    *(sa.column(name) for name in ("id", "dedup_key", "recipient_id", "kind", "channel", "queue")),
    *(sa.column(name) for name in ("status", "reason", "attempts", "provider_message_id")),
    *(sa.column(name, UTCDateTime()) for name in ("scheduled_at", "sent_at", "created_at", "updated_at")),
)
_EVENT = sa.table(
    "delivery_event",
    sa.column("delivery_id"),
    sa.column("at", UTCDateTime()),
    sa.column("event"),
    sa.column("status"),
    sa.column("reason"),
    sa.column("detail", sa.JSON()),
)
_RECIPIENT = sa.table(
    "recipient",
    sa.column("id"),
    sa.column("external_id"),
    sa.column("timezone"),
    *(sa.column(name) for name in ("email_opt_out", "sms_opt_out")),
    *(sa.column(name, UTCDateTime()) for name in ("created_at", "updated_at")),
)


@pytest.fixture(params=["sqlite", "postgres"])
def engine_before_0014(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'legacy.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("pg")
        server.create_database("implied_legacy")
        url = server.url("implied_legacy")
    engine = create_db_engine(url)
    upgrade(engine, "0013")
    yield engine
    engine.dispose()


def _entry(at: datetime, event: str, status: str | None, detail: object, reason: str | None = None) -> dict:
    return {"at": at.isoformat(), "event": event, "status": status, "reason": reason, "detail": detail}


PLANNED = {"occurrence_at": T0.isoformat(), "wall_time": "12:00"}


def test_rows_from_before_the_migration_show_each_entry_once_and_a_downgrade_stores_them(
    engine_before_0014: Engine,
) -> None:
    engine = engine_before_0014
    delivery = {"recipient_id": 1, "kind": "reminder", "channel": "email", "queue": "default", "reason": None}
    with engine.begin() as conn:
        stamps = {"created_at": T0, "updated_at": T0}
        conn.execute(
            sa.insert(_RECIPIENT).values(
                id=1, external_id="ann", timezone="UTC", email_opt_out=False, sms_opt_out=False, **stamps
            )
        )
        # 1: planned and sent before the upgrade, then a provider callback; 2: planned before, sent after.
        conn.execute(
            sa.insert(_DELIVERY),
            [
                {**delivery, **stamps, "id": 1, "dedup_key": "a", "scheduled_at": T0, "status": "sent"}
                | {"attempts": 1, "provider_message_id": "m-1", "sent_at": T0 + MINUTE},
                {**delivery, **stamps, "id": 2, "dedup_key": "b", "scheduled_at": T0, "status": "queued"}
                | {"attempts": 0, "provider_message_id": None, "sent_at": None},
            ],
        )
        sent = {"provider_message_id": "m-1", "attempt": 1}
        conn.execute(
            sa.insert(_EVENT),
            [
                {"delivery_id": 1, "at": T0, "event": "planned", "status": "planned", "reason": None}
                | {"detail": PLANNED},
                {"delivery_id": 1, "at": T0 + MINUTE, "event": "sent", "status": "sent", "reason": None}
                | {"detail": sent},
                {"delivery_id": 1, "at": T0 + 2 * MINUTE, "event": "provider_delivered", "status": None}
                | {"reason": None, "detail": {"event_id": "e-1"}},
                {"delivery_id": 2, "at": T0, "event": "planned", "status": "planned", "reason": None}
                | {"detail": PLANNED},
            ],
        )
    upgrade(engine)
    with engine.begin() as conn:  # what the worker writes for a plain send since 0014: the row alone
        conn.execute(
            sa.update(_DELIVERY)
            .where(_DELIVERY.c.id == 2)
            .values(status="sent", attempts=1, provider_message_id="m-2", sent_at=T0 + 3 * MINUTE)
        )
        # 3: planned and sent since 0014; the provider's callback stamped by a clock behind the worker's.
        conn.execute(
            sa.insert(DELIVERIES).values(
                **delivery,
                **stamps,
                id=3,
                dedup_key="c",
                local_date=T0.date(),
                scheduled_at=T0,
                status="sent",
                attempts=2,
                provider_message_id="m-3",
                sent_at=T0 + 5 * MINUTE,
                planned_status="planned",
                planned_reason="quiet_hours_deferred",
                planned_detail=PLANNED,
            )
        )
        conn.execute(  # since 0022 an entry carries its delivery's local date
            sa.insert(DELIVERY_EVENTS).values(
                delivery_id=3,
                local_date=T0.date(),
                at=T0 + 4 * MINUTE,
                event="provider_delivered",
                detail={"event_id": "e-3"},
            )
        )
    with Session(engine) as session:
        assert timeline(session, 1) == [
            _entry(T0, "planned", "planned", PLANNED),
            _entry(T0 + MINUTE, "sent", "sent", sent),
            _entry(T0 + 2 * MINUTE, "provider_delivered", None, {"event_id": "e-1"}),
        ]
        assert timeline(session, 2) == [
            _entry(T0, "planned", "planned", PLANNED),
            _entry(T0 + 3 * MINUTE, "sent", "sent", {"provider_message_id": "m-2", "attempt": 1}),
        ]
        third = [
            _entry(T0, "planned", "planned", PLANNED, reason="quiet_hours_deferred"),
            _entry(T0 + 5 * MINUTE, "sent", "sent", {"provider_message_id": "m-3", "attempt": 2}),
            _entry(T0 + 4 * MINUTE, "provider_delivered", None, {"event_id": "e-3"}),
        ]
        assert timeline(session, 3) == third
    config = alembic_config(engine)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0013")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(_EVENT).order_by(_EVENT.c.delivery_id, _EVENT.c.at)).all()
    stored = [(r.delivery_id, r.event, r.at, r.status, r.reason, r.detail) for r in rows]
    assert stored[3:] == [
        (2, "planned", T0, "planned", None, PLANNED),
        (2, "sent", T0 + 3 * MINUTE, "sent", None, {"provider_message_id": "m-2", "attempt": 1}),
        (3, "planned", T0, "planned", "quiet_hours_deferred", PLANNED),
        (3, "provider_delivered", T0 + 4 * MINUTE, None, None, {"event_id": "e-3"}),
        (3, "sent", T0 + 5 * MINUTE, "sent", None, {"provider_message_id": "m-3", "attempt": 2}),
    ], "the downgrade stores the implied entries (and no second copy of a stored one)"
    assert len(stored) == 8
