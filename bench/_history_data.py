"""A year of history for ``history_bench``: every subscription's past deliveries, timelines, ad-hoc
sends, audit entries and engagement, written as the service would have written them.

The rows are chosen so that no decision of the measured runs changes (the same work on an empty and
on a full history): the last 14 days before a subscription's cursor are ``skipped`` rows (engagement
backoff counts no skipped row, and 14 days is its longest interval), the older ones are a realistic
mix of sent (85 %), skipped, suppressed, missed, dead and cancelled; no engagement event is newer
than 46 days (``plan_bench`` gives 90 % of recipients one within 45 days: the last one stays theirs),
and nothing is within a cap window of now.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime, timedelta
from typing import Any

from plan_bench import NOW

#: Statuses of the history older than 14 days, with their reasons, weighted.
MIX = (
    ("sent", None, 85),
    ("skipped", "engagement_backoff", 8),
    ("suppressed", "frequency_cap", 3),
    ("missed", "late", 2),
    ("dead", "attempts_exhausted", 1),
    ("cancelled", "schedule_changed", 1),
)
RECENT_SKIPPED = 14
EVENT_SHARE = 0.10  # deliveries with a stored timeline entry (retries, provider callbacks)
ADHOC_SHARE = 0.05  # ad-hoc sends per planned occurrence
OPEN_SHARE = 0.20  # past sends a recipient opened
AUDIT_PER_DAY = 10
DELIVERY_COLUMNS = (
    "dedup_key", "recipient_id", "subscription_id", "kind", "channel", "queue", "local_date",
    "occurrence_at", "scheduled_at", "status", "reason", "attempts", "provider_message_id", "sent_at",
    "created_at", "updated_at", "planned_status",
)  # fmt: skip
_WEEKDAYS = {"daily": set(range(7)), "weekdays": set(range(5)), "mon,thu": {0, 3}}


def _subscriptions(url: str) -> list[tuple[Any, ...]]:
    from sqlalchemy import select

    from planner.store.db import create_db_engine
    from planner.store.tables import SUBSCRIPTIONS as S

    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    S.c.id,
                    S.c.recipient_id,
                    S.c.kind,
                    S.c.channel,
                    S.c.days,
                    S.c.next_at,
                    S.c.next_local_date,
                )
            ).all()
    finally:
        engine.dispose()
    return [tuple(r) for r in rows]


def history_rows(
    url: str, days: int, seed: int, recent: bool | None = None
) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    """("delivery", rows) for each subscription's history, and ("adhoc", rows): all of them, or
    only those due since :data:`RECENT_FROM` (``recent``) or before it (not ``recent``). The same
    rows whichever part is asked for: the part only filters them."""
    rng = random.Random(seed)
    statuses = [m[:2] for m in MIX]
    weights = [m[2] for m in MIX]
    adhoc: list[tuple[Any, ...]] = []
    for sid, rid, kind, channel, cadence, next_at, next_date in _subscriptions(url):
        rows = []
        for k in range(2, days + 1):
            day = next_date - timedelta(days=k)
            if day.weekday() not in _WEEKDAYS[cadence]:
                continue
            at = next_at - timedelta(days=k)
            status, reason = (
                ("skipped", "engagement_backoff")
                if k <= RECENT_SKIPPED
                else rng.choices(statuses, weights)[0]
            )
            sent = status == "sent"
            attempts = int(sent or status == "dead")
            message_id, sent_at = (f"file-{sid}-{k}", at) if sent else (None, None)
            planned = status if status != "sent" else "planned"
            key = f"sub:{sid}:{day.isoformat()}"
            head = (key, rid, sid, kind, channel, "default", day, at, at, status, reason)
            rows.append((*head, attempts, message_id, sent_at, at, at, planned))
            if k > RECENT_SKIPPED and rng.random() < ADHOC_SHARE:
                head = (
                    f"adhoc:{sid}:{k}",
                    rid,
                    None,
                    "password_reset",
                    "email",
                    "high",
                    day,
                    at,
                    at,
                    "sent",
                    None,
                )
                adhoc.append((*head, 1, f"file-a{sid}-{k}", at, at, at, "planned"))
        yield "delivery", _part(rows, recent)
    yield "delivery", _part(adhoc, recent)


def _part(rows: list[tuple[Any, ...]], recent: bool | None) -> list[tuple[Any, ...]]:
    if recent is None:
        return rows
    return [row for row in rows if (row[8] >= RECENT_FROM) == recent]  # row[8]: scheduled_at


def engagement_rows(n_recipients: int, days: int, seed: int) -> list[tuple[Any, ...]]:
    """Opens older than 46 days, on about a fifth of the days, for every recipient."""
    rng = random.Random(seed + 1)
    rows = []
    for rid in range(1, n_recipients + 1):
        for k in range(46, days + 1):
            if rng.random() < OPEN_SHARE:
                at = NOW - timedelta(days=k, minutes=rng.randint(0, 600))
                rows.append((rid, "daily_brief", "opened", at, at))
    return rows


def audit_rows(days: int) -> list[tuple[Any, ...]]:
    actions = ("delivery_retried", "paused", "resumed", "recipient_patched", "token_created")
    return [
        (NOW - timedelta(days=k, hours=i), "ops", actions[i % len(actions)], f"delivery:{k * 10 + i}")
        for k in range(1, days + 1)
        for i in range(AUDIT_PER_DAY)
    ]


def create_months(url: str, days: int) -> None:
    """PostgreSQL: a partition for every month of the history (as ``planner db partition`` would have
    made them from the data), up to the months the maintenance creates ahead of now."""
    from planner.store import partitions
    from planner.store.db import create_db_engine, make_session_factory, transaction

    engine = create_db_engine(url)
    try:
        factory = make_session_factory(engine)
        with factory() as session:
            existing = set(partitions.existing_months(session))
        month = partitions.month_of((NOW - timedelta(days=days + 31)).date())
        last = partitions.wanted_months(NOW.date())[-1]
        while month <= last:
            if month not in existing:
                with transaction(factory) as session:
                    partitions.create_month(session, month)
            month = partitions.next_month(month)
    finally:
        engine.dispose()


def load_history(url: str, n_recipients: int, days: int, seed: int) -> dict[str, Any]:
    """Write the history into the database at ``url`` (already loaded by ``plan_bench.populate``)."""
    if url.startswith("postgresql"):
        create_months(url, days)
    rows = history_rows(url, days, seed, recent=False)
    return _load(url, rows, lambda: engagement_rows(n_recipients, days, seed), lambda: audit_rows(days), seed)


#: Both databases hold every delivery due since then (the history adds the older ones).
RECENT_FROM = NOW - timedelta(days=2)
#: Days before a cursor a delivery due since RECENT_FROM can be (a cadence's next date is within a
#: week of the last).
RECENT_SCAN_DAYS = 9


def load_recent_pages(url: str, seed: int) -> dict[str, Any]:
    """Both databases (written before the history's is cloned from the empty one): the deliveries
    due in the last two days, which a running service holds whatever it keeps, and ad-hoc sends that
    fill a page of every filtered list measured. A list then reads the same rows on both sides: its
    ratio is what the history costs, not the page's size."""
    recent = history_rows(url, RECENT_SCAN_DAYS, seed, recent=True)
    return _load(url, [*recent, ("delivery", recent_page_rows(url))], list, list, seed)


#: Rows of each filtered list's page: more than the largest page measured (100).
RECENT_PAGE = 120


def recent_page_rows(url: str) -> list[tuple[Any, ...]]:
    """Dead ad-hoc sends of a hundred and twenty recipients and as many sent ones of ``u77``, all
    in the two days before ``NOW`` (ad-hoc: no subscription's decision reads them)."""
    from sqlalchemy import select

    from planner.store.db import create_db_engine
    from planner.store.tables import RECIPIENTS as R

    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            first = select(R.c.external_id, R.c.id).order_by(R.c.id).limit(RECENT_PAGE)
            ids = dict(conn.execute(first).all())
            (u77,) = conn.execute(select(R.c.id).where(R.c.external_id == "u77")).one()
    finally:
        engine.dispose()
    rows = []
    for i, rid in enumerate(ids.values()):
        at = NOW - timedelta(hours=47) + timedelta(minutes=20 * i)
        head = (f"recent:dead:{i}", rid, None, "password_reset", "email", "high", at.date(), at, at)
        rows.append((*head, "dead", "attempts_exhausted", 3, None, None, at, at, "planned"))
    for i in range(RECENT_PAGE):
        at = NOW - timedelta(hours=47) + timedelta(minutes=20 * i)
        head = (f"recent:u77:{i}", u77, None, "password_reset", "email", "high", at.date(), at, at)
        rows.append((*head, "sent", None, 1, f"file-recent-{i}", at, at, at, "planned"))
    return rows


def _event(
    rng: random.Random, delivery_id: int, status: str, day: date, at: datetime
) -> tuple[Any, ...] | None:
    if rng.random() >= EVENT_SHARE:
        return None
    event = "provider_delivered" if status == "sent" else "retrying"
    return (delivery_id, day, at, event, None if status == "sent" else "retrying")


Batches = Iterable[tuple[str, list[tuple[Any, ...]]]]


def _load(
    url: str,
    deliveries: Batches,
    engagement: Callable[[], list[Any]],
    audit: Callable[[], list[Any]],
    seed: int,
) -> dict[str, Any]:
    started = time.perf_counter()
    counts = {"deliveries": 0, "events": 0, "engagement_events": 0, "audit": 0, "adhoc_keys": 0}
    if url.startswith("postgresql"):
        _load_pg(url, deliveries, engagement, audit, seed, counts)
    else:
        _load_sqlite(url.split(":///", 1)[1], deliveries, engagement, audit, seed, counts)
    counts["seconds"] = round(time.perf_counter() - started, 1)
    return counts


def _load_pg(
    url: str, deliveries: Batches, engagement_of: Callable[[], list[Any]], audit_of: Callable[[], list[Any]],
    seed: int, counts: dict[str, int],
) -> None:  # fmt: skip
    import psycopg

    rng = random.Random(seed + 2)
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        for _, rows in deliveries:
            if not rows:
                continue
            with conn.cursor() as cur:
                with cur.copy(f"COPY delivery ({', '.join(DELIVERY_COLUMNS)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                first = cur.execute("SELECT currval('delivery_id_seq')").fetchone()[0] - len(rows) + 1  # type: ignore[index]
                events = [
                    e for i, row in enumerate(rows) if (e := _event(rng, first + i, row[9], row[6], row[8]))
                ]
                with cur.copy(
                    "COPY delivery_event (delivery_id, local_date, at, event, status) FROM STDIN"
                ) as copy:
                    for event in events:
                        copy.write_row(event)
                adhoc = [(row[0], row[6]) for row in rows if row[2] is None]
                if adhoc:
                    with cur.copy("COPY adhoc_key (dedup_key, local_date) FROM STDIN") as copy:
                        for key in adhoc:
                            copy.write_row(key)
            conn.commit()
            counts["deliveries"] += len(rows)
            counts["events"] += len(events)
            counts["adhoc_keys"] += len(adhoc)
        with conn.cursor() as cur:
            with cur.copy(
                "COPY engagement_event (recipient_id, kind, event, occurred_at, created_at) FROM STDIN"
            ) as copy:
                for row in (engagement := engagement_of()):
                    copy.write_row(row)
            with cur.copy("COPY audit_log (at, actor, action, target) FROM STDIN") as copy:
                for row in (audit := audit_of()):
                    copy.write_row(row)
        conn.commit()
        counts["engagement_events"], counts["audit"] = len(engagement), len(audit)
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(NOW.tzinfo).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _load_sqlite(
    path: str, deliveries: Batches, engagement_of: Callable[[], list[Any]], audit_of: Callable[[], list[Any]],
    seed: int, counts: dict[str, int],
) -> None:  # fmt: skip
    rng = random.Random(seed + 2)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")  # the load only: the measured runs use the service's settings
        marks = ", ".join("?" for _ in DELIVERY_COLUMNS)
        insert = f"INSERT INTO delivery ({', '.join(DELIVERY_COLUMNS)}) VALUES ({marks})"
        for _, rows in deliveries:
            if not rows:
                continue
            conn.execute("BEGIN")
            first = (conn.execute("SELECT coalesce(max(id), 0) FROM delivery").fetchone()[0]) + 1
            conn.executemany(insert, ([_sqlite_value(v) for v in row] for row in rows))
            events = [
                e for i, row in enumerate(rows) if (e := _event(rng, first + i, row[9], row[6], row[8]))
            ]
            conn.executemany(
                "INSERT INTO delivery_event (delivery_id, local_date, at, event, status)"
                " VALUES (?, ?, ?, ?, ?)",
                ([_sqlite_value(v) for v in e] for e in events),
            )
            adhoc = [(row[0], row[6].isoformat()) for row in rows if row[2] is None]
            conn.executemany("INSERT INTO adhoc_key (dedup_key, local_date) VALUES (?, ?)", adhoc)
            conn.execute("COMMIT")
            counts["deliveries"] += len(rows)
            counts["events"] += len(events)
            counts["adhoc_keys"] += len(adhoc)
        conn.execute("BEGIN")
        engagement = engagement_of()
        conn.executemany(
            "INSERT INTO engagement_event (recipient_id, kind, event, occurred_at, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            ([_sqlite_value(v) for v in row] for row in engagement),
        )
        audit = audit_of()
        conn.executemany(
            "INSERT INTO audit_log (at, actor, action, target) VALUES (?, ?, ?, ?)",
            ([_sqlite_value(v) for v in row] for row in audit),
        )
        conn.execute("COMMIT")
        counts["engagement_events"], counts["audit"] = len(engagement), len(audit)
        conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
