"""Migration 0020: the engagement already recorded becomes each recipient's statistic by local time of
day (in the recipient's zone, across a DST change); a learned send time is checked whole by the
database; the downgrade drops the columns in place, with rows referencing the tables."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import Engine

from planner.core.engagement_slots import EngagementSlots
from planner.store.db import alembic_config, create_db_engine, upgrade
from planner.store.types import UTCDateTime
from tests.servers import PostgresServer

NOW = datetime(2026, 3, 12, 12, 0, tzinfo=UTC)


def _engine_at(request: pytest.FixtureRequest, tmp_path: Path, revision: str) -> Iterator[Engine]:
    """A database of the fixture's kind, upgraded to ``revision``."""
    name = f"learned_at_{revision}"
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / f'{name}.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("pg")
        server.create_database(name)
        url = server.url(name)
    engine = create_db_engine(url)
    upgrade(engine, revision)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def engine_before_0020(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    yield from _engine_at(request, tmp_path, "0019")


_RECIPIENT = sa.table(
    "recipient",
    *(sa.column(name) for name in ("id", "external_id", "timezone", "email_opt_out", "sms_opt_out")),
    *(sa.column(name, UTCDateTime()) for name in ("created_at", "updated_at")),
)
_EVENT = sa.table(
    "engagement_event",
    *(sa.column(name) for name in ("recipient_id", "event")),
    *(sa.column(name, UTCDateTime()) for name in ("occurred_at", "created_at")),
)
_SUBSCRIPTION = sa.table(
    "subscription",
    *(
        sa.column(name)
        for name in ("id", "recipient_id", "kind", "channel", "days", "times", "digest", "active")
    ),
    *(sa.column(name, sa.Time()) for name in ("send_time", "auto_until", "auto_default")),
    *(sa.column(name, UTCDateTime()) for name in ("created_at", "updated_at")),
)


def test_recorded_engagement_becomes_the_statistic_in_local_time(engine_before_0020: Engine) -> None:
    # 19:40 in New York before and after the 2026-03-08 change (00:40Z, then 23:40Z), 08:10 in Tokyo.
    instants = {
        1: [datetime(2026, 3, 6, 0, 40, tzinfo=UTC), datetime(2026, 3, 9, 23, 40, tzinfo=UTC)],
        2: [datetime(2026, 3, 9, 23, 10, tzinfo=UTC)],
    }
    with engine_before_0020.begin() as connection:
        for rid, zone in ((1, "America/New_York"), (2, "Asia/Tokyo"), (3, "UTC")):
            connection.execute(
                _RECIPIENT.insert().values(
                    id=rid, external_id=f"r{rid}", timezone=zone, email_opt_out=False, sms_opt_out=False,
                    created_at=NOW, updated_at=NOW,
                )
            )  # fmt: skip
        for rid, found in instants.items():
            for at in found:
                connection.execute(
                    _EVENT.insert().values(recipient_id=rid, event="opened", occurred_at=at, created_at=NOW)
                )
        connection.execute(
            _SUBSCRIPTION.insert().values(
                id=1, recipient_id=1, kind="brief", channel="email", days="daily", digest=False, active=True,
                send_time=time(9), created_at=NOW, updated_at=NOW,
            )
        )  # fmt: skip
    upgrade(engine_before_0020)
    with engine_before_0020.connect() as connection:
        stored = dict(
            connection.execute(sa.text("SELECT id, engagement_slots FROM recipient ORDER BY id")).all()
        )
    slots = {rid: EngagementSlots.from_json(_json(value)) for rid, value in stored.items()}
    assert {s: c.events for s, c in slots[1].slots.items()} == {39: 2}  # 19:30-20:00 both times
    assert {s: c.events for s, c in slots[2].slots.items()} == {16: 1}  # 08:10 JST
    assert slots[3].as_of is None
    with pytest.raises(sa.exc.IntegrityError), engine_before_0020.begin() as connection:
        connection.execute(sa.text("UPDATE subscription SET auto_until = '21:00:00' WHERE id = 1"))
    config = alembic_config(engine_before_0020)
    with engine_before_0020.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0019")
    with engine_before_0020.connect() as connection:
        columns = {c["name"] for c in sa.inspect(connection).get_columns("subscription")}
    assert not {"auto_until", "auto_default"} & columns


def _json(value: object) -> object:
    import json

    return json.loads(value) if isinstance(value, str) else value


@pytest.fixture(params=["sqlite", "postgres"])
def engine_at_0025(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    yield from _engine_at(request, tmp_path, "0025")


_SLOTS = sa.table("recipient", sa.column("id"), sa.column("engagement_slots", sa.JSON(none_as_null=True)))
_AS_OF = "2026-03-09T23:40:00+00:00"


def test_the_statistic_names_its_half_hours_by_number_from_0026(engine_at_0025: Engine) -> None:
    # At 0025 the slots were written 'HH:MM'; a JSON null (an erasure) and SQL NULL stay as they are.
    written = {
        1: {"as_of": _AS_OF, "slots": ["08:00", 1, 0.5, "19:30", 2, 1.75]},
        2: {"as_of": _AS_OF, "slots": []},
    }
    with engine_at_0025.begin() as connection:
        for rid in (1, 2, 3, 4):
            connection.execute(
                _RECIPIENT.insert().values(
                    id=rid, external_id=f"r{rid}", timezone="UTC", email_opt_out=False, sms_opt_out=False,
                    created_at=NOW, updated_at=NOW,
                )
            )  # fmt: skip
        for rid, stored in written.items():
            connection.execute(_SLOTS.update().where(_SLOTS.c.id == rid).values(engagement_slots=stored))
        connection.execute(sa.text("UPDATE recipient SET engagement_slots = 'null' WHERE id = 3"))
    before = _stored(engine_at_0025)
    assert EngagementSlots.from_json(before[1]).slots == {16: (1, 0.5), 39: (2, 1.75)}  # the old form reads

    upgrade(engine_at_0025)
    after = _stored(engine_at_0025)
    assert after == {
        1: {"as_of": _AS_OF, "slots": [16, 1, 0.5, 39, 2, 1.75]},
        2: {"as_of": _AS_OF, "slots": []},
        3: None,
        4: None,
    }
    assert EngagementSlots.from_json(after[1]) == EngagementSlots.from_json(before[1])

    config = alembic_config(engine_at_0025)
    with engine_at_0025.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0025")
    assert _stored(engine_at_0025) == {**before, 3: None, 4: None}


def _stored(engine: Engine) -> dict[int, object]:
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT id, engagement_slots FROM recipient ORDER BY id")).all()
    return {rid: _json(value) for rid, value in rows}
