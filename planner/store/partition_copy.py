"""PostgreSQL: moving the single ``delivery`` and ``delivery_event`` tables into partitioned ones, live.

The steps (``planner db partition`` runs 2-4; migration 0022 runs 1, and all of them at once when
the tables are small):

1. **prepare**: the partitioned tables are created beside the old ones (``*_partitioned``, a
   partition per month from the oldest delivery to :data:`~planner.store.partitions.MONTHS_AHEAD`
   months ahead, and a default one), and a trigger copies every later change of a delivery into them.
2. **copy the deliveries** in id order, a batch per short transaction (``ON CONFLICT DO NOTHING``:
   a row the trigger copied is newer than the batch's). Ad-hoc keys are registered on the way.
3. **copy the timeline**: a second trigger now copies every new entry, and the batches copy the
   ones before. It starts once every delivery is there, because an entry needs its delivery.
4. **swap**, one short transaction holding both tables' locks: the last rows are copied, the
   triggers dropped, the sequences handed over, the old tables renamed ``*_unpartitioned``
   (without their indexes) and the new ones take the names. Drop the old ones once satisfied.

Rows written before 0022 have no ``local_date`` on ad-hoc deliveries and on timeline entries: they
get their delivery's, or the UTC date of the occurrence. While the copy runs, the retention leaves
deliveries alone (a delete racing a batch could bring a row back); the service runs as usual.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Literal

from sqlalchemy import text
from sqlalchemy.orm import Session

from planner.store import dead_letter_days
from planner.store.partitions import MONTHS_AHEAD, month_of, next_month, partition_name
from planner.store.tables import DELIVERIES, DELIVERY_EVENTS

State = Literal["single", "copying", "partitioned"]
#: The most deliveries migration 0022 moves inside its own transaction (a few seconds); a larger
#: table is left to ``planner db partition``, which copies it in batches.
MOVED_AT_ONCE = 200_000
NEW = {"delivery": "delivery_partitioned", "delivery_event": "delivery_event_partitioned"}
#: The (model's) indexes of each table, with their definition: made on the new tables under a
#: temporary name, given the model's name at the swap.
OPEN = "status IN ('planned', 'queued', 'retrying', 'sending', 'dead')"
PENDING = "status IN ('planned', 'queued', 'retrying')"
INDEXES = {
    "delivery": {
        "ix_delivery_open_scheduled": f"(status, scheduled_at) WHERE {OPEN}",
        "ix_delivery_pending_updated": f"(updated_at) WHERE {PENDING}",
        "ix_delivery_recipient_scheduled": "(recipient_id, scheduled_at, id)",
        "ix_delivery_subscription_date": "(subscription_id, local_date)",
        "ix_delivery_scheduled_id": "(scheduled_at, id)",
        "ix_delivery_provider_message_id": "(provider_message_id)",
    },
    "delivery_event": {"ix_delivery_event_delivery_id": "(delivery_id)"},
}
#: A planned key carries its local date (``sub:<id>:<YYYY-MM-DD>[@HH:MM][:cancelled:<id>]``): held
#: to the row's, a unique (key, local date) is a unique key.
KEY_DATE_CHECK = (
    "CHECK (dedup_key NOT LIKE 'sub:%' OR left(split_part(dedup_key, ':', 3), 10) = "
    "to_char(local_date, 'YYYY-MM-DD'))"
)


def legacy_date(row: str = "") -> str:
    """The local date of a delivery row (``row`` is its alias, with the dot) written before 0022
    without one (an ad-hoc delivery): its occurrence's UTC date."""
    return (
        f"COALESCE({row}local_date, ({row}occurrence_at AT TIME ZONE 'UTC')::date,"
        f" ({row}scheduled_at AT TIME ZONE 'UTC')::date)"
    )


_DELIVERY_COLUMNS = [c.name for c in DELIVERIES.columns]
_EVENT_COLUMNS = [c.name for c in DELIVERY_EVENTS.columns]


def state(session: Session) -> State:
    """Where the move stands: not begun, copying, or done (also "single" on SQLite)."""
    if session.get_bind().dialect.name != "postgresql":
        return "single"
    kinds: dict[str, str] = dict(
        session.execute(
            text(
                "SELECT relname, relkind FROM pg_class WHERE relname IN ('delivery', 'delivery_partitioned')"
                " AND relnamespace = to_regnamespace(current_schema())"
            )
        ).all()
    )
    if kinds.get("delivery") == "p":
        return "partitioned"
    return "copying" if "delivery_partitioned" in kinds else "single"


def _statements(sql: str) -> list[str]:
    return [part.strip() for part in sql.split(";\n") if part.strip()]


def prepare(session: Session, today: date) -> None:
    """Step 1, in the caller's transaction: the new tables, their months, the delivery trigger."""
    oldest = session.scalar(text("SELECT min(scheduled_at) FROM delivery"))
    first = month_of(oldest.date()) if oldest is not None else month_of(today)
    last = month_of(today)
    for _ in range(MONTHS_AHEAD):
        last = next_month(last)
    for table, new in NEW.items():
        for statement in _statements(_new_table_sql(table, new)):
            session.execute(text(statement))
        month = first
        while month <= last:
            session.execute(
                text(
                    f"CREATE TABLE {partition_name(table, month)} PARTITION OF {new}"
                    f" FOR VALUES FROM ('{month}') TO ('{next_month(month)}')"
                )
            )
            month = next_month(month)
        session.execute(text(f"CREATE TABLE {table}_default PARTITION OF {new} DEFAULT"))
    session.execute(text(_mirror_function("delivery")))
    session.execute(
        text(
            "CREATE TRIGGER planner_partition_copy AFTER INSERT OR UPDATE OR DELETE ON delivery"
            " FOR EACH ROW EXECUTE FUNCTION planner_partition_copy_delivery()"
        )
    )


def _new_table_sql(table: str, new: str) -> str:
    indexes = "".join(
        f"CREATE INDEX {name}_new ON {new} {definition};\n" for name, definition in INDEXES[table].items()
    )
    if table == "delivery":
        keys = (
            f"ALTER TABLE {new} ADD CONSTRAINT {new}_pkey PRIMARY KEY (id, local_date);\n"
            f"ALTER TABLE {new} ADD CONSTRAINT uq_delivery_dedup_key_date_new"
            " UNIQUE (dedup_key, local_date);\n"
            f"ALTER TABLE {new} ADD CONSTRAINT ck_delivery_key_date {KEY_DATE_CHECK};\n"
            f"ALTER TABLE {new} ADD CONSTRAINT delivery_recipient_id_fkey FOREIGN KEY (recipient_id)"
            " REFERENCES recipient (id);\n"
            f"ALTER TABLE {new} ADD CONSTRAINT delivery_subscription_id_fkey FOREIGN KEY (subscription_id)"
            " REFERENCES subscription (id);\n"
        )
    else:
        keys = (
            f"ALTER TABLE {new} ADD CONSTRAINT {new}_pkey PRIMARY KEY (id, local_date);\n"
            f"ALTER TABLE {new} ADD CONSTRAINT delivery_event_delivery_id_local_date_fkey"
            " FOREIGN KEY (delivery_id, local_date)"
            " REFERENCES delivery_partitioned (id, local_date);\n"
        )
    return (
        f"CREATE TABLE {new} (LIKE {table} INCLUDING DEFAULTS) PARTITION BY RANGE (local_date);\n"
        f"ALTER TABLE {new} ALTER COLUMN local_date SET NOT NULL;\n{keys}{indexes}"
    )


def _mirror_function(table: str) -> str:
    """The trigger function copying each change of ``table`` into its new table."""
    columns = _DELIVERY_COLUMNS if table == "delivery" else _EVENT_COLUMNS
    values = ", ".join(
        (f"COALESCE(NEW.local_date, {_event_date('NEW.delivery_id')})" if table == "delivery_event"
         else legacy_date("NEW."))
        if name == "local_date" else f"NEW.{name}"
        for name in columns
    )  # fmt: skip
    if table == "delivery":
        updates = ", ".join(
            f"{name} = EXCLUDED.{name}" for name in columns if name not in ("id", "local_date")
        )
        upsert = f"ON CONFLICT (id, local_date) DO UPDATE SET {updates}"
    else:
        upsert = "ON CONFLICT DO NOTHING"
    return (
        f"CREATE OR REPLACE FUNCTION planner_partition_copy_{table}() RETURNS trigger"
        " LANGUAGE plpgsql AS $$ BEGIN"
        f" IF TG_OP = 'DELETE' THEN DELETE FROM {NEW[table]} WHERE id = OLD.id; RETURN NULL; END IF;"
        f" INSERT INTO {NEW[table]} ({', '.join(columns)}) VALUES ({values}) {upsert};"
        " RETURN NULL; END $$"
    )


def _event_date(delivery_id: str) -> str:
    return f"(SELECT d.local_date FROM delivery_partitioned d WHERE d.id = {delivery_id} LIMIT 1)"


def copy_batch(session: Session, table: str, after: int, limit: int) -> int | None:
    """Steps 2 and 3: copy the rows of ``table`` with ids after ``after``, at most ``limit`` of them,
    in the caller's transaction; returns the last id copied (None: nothing left)."""
    last = session.scalar(
        text(f"SELECT max(id) FROM (SELECT id FROM {table} WHERE id > :after ORDER BY id LIMIT :n) AS b"),
        {"after": after, "n": limit},
    )
    if last is None:
        return None
    window = {"after": after, "last": last}
    if table == "delivery":
        columns = ", ".join(_DELIVERY_COLUMNS)
        chosen = ", ".join(legacy_date() if name == "local_date" else name for name in _DELIVERY_COLUMNS)
        session.execute(
            text(
                f"INSERT INTO delivery_partitioned ({columns}) SELECT {chosen} FROM delivery"
                " WHERE id > :after AND id <= :last ON CONFLICT DO NOTHING"
            ),
            window,
        )
        session.execute(
            text(
                f"INSERT INTO adhoc_key (dedup_key, local_date) SELECT dedup_key, {legacy_date()}"
                " FROM delivery WHERE id > :after AND id <= :last AND subscription_id IS NULL"
                " ON CONFLICT DO NOTHING"
            ),
            window,
        )
    else:
        columns = ", ".join(_EVENT_COLUMNS)
        chosen = ", ".join(
            f"COALESCE(e.local_date, {legacy_date('d.')})" if name == "local_date" else f"e.{name}"
            for name in _EVENT_COLUMNS
        )
        session.execute(
            text(
                f"INSERT INTO delivery_event_partitioned ({columns}) SELECT {chosen} FROM delivery_event e"
                " JOIN delivery d ON d.id = e.delivery_id"
                " WHERE e.id > :after AND e.id <= :last ON CONFLICT DO NOTHING"
            ),
            window,
        )
    return int(last)


def start_event_copy(session: Session) -> None:
    """Step 3's start, in the caller's transaction: new timeline entries are copied from now on."""
    session.execute(text(_mirror_function("delivery_event")))
    session.execute(
        text(
            "CREATE TRIGGER planner_partition_copy AFTER INSERT OR DELETE ON delivery_event"
            " FOR EACH ROW EXECUTE FUNCTION planner_partition_copy_delivery_event()"
        )
    )


def event_copy_started(session: Session) -> bool:
    found = session.scalar(
        text(
            "SELECT 1 FROM pg_trigger WHERE tgname = 'planner_partition_copy'"
            " AND tgrelid = to_regclass('delivery_event')"
        )
    )
    return found is not None


def swap(session: Session, positions: dict[str, int], lock_timeout: str = "10s") -> dict[str, int]:
    """Step 4, in the caller's transaction (commit at once: it holds both tables' locks): the rows
    after ``positions`` (the last ids the batches copied) are copied, then the new tables take the
    old ones' names. Returns the last ids copied."""
    session.execute(text(f"SET LOCAL lock_timeout = '{lock_timeout}'"))
    session.execute(
        text(
            "LOCK TABLE delivery, delivery_event, delivery_partitioned, delivery_event_partitioned"
            " IN ACCESS EXCLUSIVE MODE"
        )
    )
    for table in NEW:
        while (last := copy_batch(session, table, positions[table], 50_000)) is not None:
            positions[table] = last
    with _dead_letter_triggers_kept(session):
        for statement in _statements(_swap_sql()):
            session.execute(text(statement))
    return positions


@contextmanager
def _dead_letter_triggers_kept(session: Session) -> Iterator[None]:
    """The dead letters' count triggers (migration 0025, when it ran) taken off the delivery table
    the block replaces and put on the one that takes its name: the rows are the same, so are the
    counts."""
    found = session.scalar(
        text("SELECT 1 FROM pg_trigger WHERE tgname = :name AND tgrelid = to_regclass('delivery')"),
        {"name": dead_letter_days.TRIGGERS["INSERT"]},
    )
    if found is not None:
        for statement in dead_letter_days.drop_triggers_ddl("postgresql"):
            session.execute(text(statement))
    yield
    if found is not None:
        for statement in dead_letter_days.trigger_ddl("postgresql"):
            session.execute(text(statement))


def _swap_sql() -> str:
    renames = []
    for table, new in NEW.items():
        renames.append(f"DROP TRIGGER planner_partition_copy ON {table}")
        renames.append(f"DROP FUNCTION planner_partition_copy_{table}()")
        renames.append(f"ALTER SEQUENCE {table}_id_seq OWNED BY {new}.id")
    for table in ("delivery_event", "delivery"):  # the timeline references the deliveries
        for name in INDEXES[table]:  # an index a later migration added may not be there yet
            renames.append(f"DROP INDEX IF EXISTS {name}")
        renames.append(f"ALTER TABLE {table} RENAME TO {table}_unpartitioned")
        renames.append(
            f"ALTER TABLE {table}_unpartitioned RENAME CONSTRAINT {table}_pkey TO {table}_unpartitioned_pkey"
        )
    for table, new in NEW.items():
        renames.append(f"ALTER TABLE {new} RENAME TO {table}")
        renames.append(f"ALTER TABLE {table} RENAME CONSTRAINT {new}_pkey TO {table}_pkey")
        for name in INDEXES[table]:
            renames.append(f"ALTER INDEX {name}_new RENAME TO {name}")
    renames.append(
        "ALTER TABLE delivery RENAME CONSTRAINT uq_delivery_dedup_key_date_new TO uq_delivery_dedup_key_date"
    )
    return ";\n".join(renames)


def drop_unpartitioned(session: Session) -> None:
    """After the swap, once satisfied: the old tables go (their timeline first)."""
    session.execute(text("DROP TABLE IF EXISTS delivery_event_unpartitioned"))
    session.execute(text("DROP TABLE IF EXISTS delivery_unpartitioned"))


def unpartition(session: Session) -> None:
    """The single tables again, every row copied in the caller's transaction (migration 0022's
    downgrade: for going back from a fresh upgrade, not from a year of history)."""
    if state(session) != "partitioned":
        return
    with _dead_letter_triggers_kept(session):
        _unpartition(session)


def _unpartition(session: Session) -> None:
    for table in NEW:
        session.execute(text(f"CREATE TABLE {table}_single (LIKE {table} INCLUDING DEFAULTS)"))
        session.execute(text(f"INSERT INTO {table}_single SELECT * FROM {table}"))
        session.execute(text(f"ALTER SEQUENCE {table}_id_seq OWNED BY {table}_single.id"))
    session.execute(text("DROP TABLE delivery_event"))
    session.execute(text("DROP TABLE delivery"))
    statements = []
    for table in NEW:
        statements.append(f"ALTER TABLE {table}_single RENAME TO {table}")
        statements.append(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY (id)")
        statements += [f"CREATE INDEX {name} ON {table} {spec}" for name, spec in INDEXES[table].items()]
    statements += [
        "ALTER TABLE delivery ALTER COLUMN local_date DROP NOT NULL",
        "ALTER TABLE delivery_event ALTER COLUMN local_date DROP NOT NULL",
        "ALTER TABLE delivery ADD CONSTRAINT delivery_dedup_key_key UNIQUE (dedup_key)",
        "ALTER TABLE delivery ADD FOREIGN KEY (recipient_id) REFERENCES recipient (id)",
        "ALTER TABLE delivery ADD FOREIGN KEY (subscription_id) REFERENCES subscription (id)",
        "ALTER TABLE delivery_event ADD FOREIGN KEY (delivery_id) REFERENCES delivery (id)",
    ]
    for statement in statements:
        session.execute(text(statement))
