"""Migration 0016: rules saved before the strict grammar are stored in their normal form, or, when the
grammar refuses them, their subscription ends; nothing the planner claims can then fail to parse."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from planner.store.db import create_db_engine, upgrade
from planner.store.types import UTCDateTime
from tests.servers import PostgresServer

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def engine_before_0016(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'legacy.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("pg")
        server.create_database("strict_rules_legacy")
        url = server.url("strict_rules_legacy")
    engine = create_db_engine(url)
    upgrade(engine, "0015")
    yield engine
    engine.dispose()


# The subscription table as revision 0015 had it (only the columns written here), typed.
_SUBSCRIPTION = sa.table(
    "subscription",
    *(
        sa.column(name)
        for name in ("id", "recipient_id", "kind", "channel", "days", "rrule", "digest", "active")
    ),
    sa.column("send_time", sa.Time()),
    *(sa.column(name, sa.Date()) for name in ("start_date", "next_local_date")),
    *(sa.column(name, UTCDateTime()) for name in ("next_at", "created_at", "updated_at")),
)
_RECIPIENT = sa.table(
    "recipient",
    *(sa.column(name) for name in ("id", "external_id", "timezone", "email_opt_out", "sms_opt_out")),
    *(sa.column(name, UTCDateTime()) for name in ("created_at", "updated_at")),
)


def _subscribe(connection: sa.Connection, sub_id: int, rrule: str, start: date | None) -> None:
    connection.execute(
        _SUBSCRIPTION.insert().values(
            id=sub_id, recipient_id=1, kind=f"k{sub_id}", channel="email", send_time=time(9), days="daily",
            rrule=rrule, start_date=start, digest=False, active=True, next_at=NOW, next_local_date=NOW.date(),
            created_at=NOW, updated_at=NOW,
        )
    )  # fmt: skip


def test_saved_rules_are_normalised_or_their_subscription_ends(engine_before_0016: Engine) -> None:
    with engine_before_0016.begin() as connection:
        connection.execute(
            _RECIPIENT.insert().values(
                id=1, external_id="ann", timezone="UTC", email_opt_out=False, sms_opt_out=False,
                created_at=NOW, updated_at=NOW,
            )
        )  # fmt: skip
        _subscribe(connection, 1, "FREQ=MONTHLY;BYDAY=-1FR", None)  # fine as it is
        _subscribe(connection, 2, "FREQ=WEEKLY;UNTIL=20270101T000000Z", date(2026, 3, 2))  # a date-time
        _subscribe(connection, 3, "FREQ=DAILY;UNTIL=garbage", None)  # the UNTIL was dropped: refused now
        _subscribe(connection, 4, "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", None)  # never occurs
    upgrade(engine_before_0016)
    with engine_before_0016.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT id, rrule, active, next_at FROM subscription ORDER BY id")
        ).all()
    assert [(r.id, r.rrule, bool(r.active), r.next_at is None) for r in rows] == [
        (1, "FREQ=MONTHLY;BYDAY=-1FR", True, False),
        (2, "FREQ=WEEKLY;UNTIL=20270101", True, False),
        (3, "FREQ=DAILY;UNTIL=garbage", False, True),
        (4, "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", False, True),
    ]
