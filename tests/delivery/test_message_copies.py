"""The copy of what was sent, kept with the delivery on SQLite and PostgreSQL: written with the
worker's outcome (sent, dead) and only then, bounded, dropped past its retention and on erasure,
never logged."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
import structlog
from sqlalchemy import func, insert, select, update

from adapters import Message, PermanentError, TransientError
from adapters.capture import CaptureAdapter
from planner.app import App, build_deliverer
from planner.commands.importer import import_lines
from planner.commands.message_copies import drop_old_copies
from planner.commands.notify import notify
from planner.commands.recipients import erase
from planner.delivery.deliverer import Deliverer
from planner.processes.worker import run_maintenance
from planner.settings import Settings
from planner.store.models import Delivery
from planner.store.queries import get_delivery
from planner.store.tables import DELIVERIES, DELIVERY_MESSAGES, DIGEST_EVENTS, RECIPIENTS
from tests.helpers import Clock, recipient_line, runner

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
BRIEF = [{"kind": "daily_brief", "channel": "email", "at": "12:30"}]
DIGEST = [{"kind": "comments_digest", "channel": "email", "at": "12:30", "days": "daily", "digest": True}]
SECRET = "s" * 40


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


def _app(settings: Settings, clock: Clock, **changes: Any) -> App:
    values = {
        "rate_limit_email": "1000/second",
        "public_base_url": "https://planner.example.com",
        "signing_secret": SECRET,
        **changes,
    }
    return App(Settings(**{**settings.model_dump(), **values}), clock=clock)


@pytest.fixture
def timed_app(settings: Settings, clock: Clock) -> Iterator[App]:
    app = _app(settings, clock)
    yield app
    app.close()


@pytest.fixture
def capture() -> CaptureAdapter:
    return CaptureAdapter()


@pytest.fixture
def deliverer(timed_app: App, capture: CaptureAdapter) -> Deliverer:
    return build_deliverer(timed_app, adapters={"email": capture, "sms": capture})


def planned(app: App, clock: Clock, lines: list[str]) -> list[Delivery]:
    import_lines(app.sessions, lines, NOW)
    runner(app).run(NOW, HOUR)
    with app.sessions() as session:
        rows = list(session.scalars(select(Delivery).order_by(Delivery.id)))
    clock.now = max(r.scheduled_at for r in rows)
    return rows


def notified(app: App, clock: Clock, name: str, data: dict[str, Any]) -> int:
    """An ad-hoc daily brief carrying ``data`` (its template prints ``data.headline``), due now."""
    import_lines(app.sessions, [recipient_line(name, "UTC", [])], NOW)
    result = notify(app, name, "daily_brief", "email", now=clock.now, data=data)
    return int(result.delivery["id"])


def shown(app: App, delivery_id: int) -> dict[str, Any]:
    with app.sessions() as session:
        return get_delivery(session, delivery_id)


def copies(app: App) -> int:
    with app.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(DELIVERY_MESSAGES)) or 0)


def test_a_sent_message_is_kept_with_its_headers(
    timed_app: App, deliverer: Deliverer, clock: Clock, capture: CaptureAdapter
) -> None:
    brief = notified(timed_app, clock, "ann", {"headline": "Rain"})
    assert shown(timed_app, brief)["message"] is None, "nothing sent, nothing kept"
    assert deliverer.deliver_batch([brief]).sent == 1
    [sent] = capture.sent
    assert sent.text and "Today: Rain" in sent.text
    message = shown(timed_app, brief)["message"]
    assert message["subject"] == sent.subject == "Your daily brief for 2026-03-02"
    assert message["text"] == sent.text and message["html"] == sent.html and message["html"]
    assert message["headers"] == {"To": "ann@example.com", "Message-ID": sent.message_id, **sent.headers}
    assert message["headers"]["List-Unsubscribe"].startswith("<https://planner.example.com/u/")
    assert message["cut"] is False and message["digest"] is None
    assert message["size"] == sum(
        len(v.encode()) for v in (sent.subject, sent.text, sent.html, *message["headers"].values()) if v
    )
    assert datetime.fromisoformat(message["kept_at"]) == clock.now
    json.dumps(message)  # what the API and --json print


def test_a_digest_keeps_which_events_it_listed(
    settings: Settings, clock: Clock, capture: CaptureAdapter
) -> None:
    app = _app(settings, clock, digest_max_events=2)
    try:
        [digest] = planned(app, clock, [recipient_line("ann", "UTC", DIGEST)])
        with app.sessions() as session, session.begin():
            rid = session.scalar(select(RECIPIENTS.c.id))
            rows = [{"recipient_id": rid, "kind": "comments_digest", "data": {"author": a},
                     "occurred_at": NOW, "received_at": NOW} for a in ("a", "b", "c")]  # fmt: skip
            session.execute(insert(DIGEST_EVENTS), rows)
            ids = sorted(session.scalars(select(DIGEST_EVENTS.c.id)))
        deliverer = build_deliverer(app, adapters={"email": capture, "sms": capture})
        assert deliverer.deliver_batch([digest.id or 0]).sent == 1
        message = shown(app, digest.id or 0)["message"]
        assert message["digest"] == {"event_ids": ids[:2], "more": 1}
        assert message["subject"] == "You have 3 new comments"
    finally:
        app.close()


def test_a_dead_delivery_keeps_what_was_tried_and_a_retry_keeps_nothing_yet(
    timed_app: App, clock: Clock
) -> None:
    failures = iter([TransientError("try later"), PermanentError("550 no such user")])

    def fail(message: Message) -> None:
        raise next(failures)

    capture = CaptureAdapter(fail_with=fail)
    deliverer = build_deliverer(timed_app, adapters={"email": capture, "sms": capture})
    [brief] = planned(timed_app, clock, [recipient_line("ann", "UTC", BRIEF)])
    assert deliverer.deliver_batch([brief.id or 0]).retrying == 1
    assert shown(timed_app, brief.id or 0)["message"] is None, "a retry: the last attempt's copy is kept"
    with timed_app.sessions() as session:
        clock.now = session.scalar(select(DELIVERIES.c.scheduled_at))
    assert deliverer.deliver_batch([brief.id or 0]).dead == 1
    data = shown(timed_app, brief.id or 0)
    assert data["status"] == "dead" and data["message"]["subject"] == "Your daily brief for 2026-03-02"


def test_an_outcome_written_after_the_claim_was_lost_keeps_no_copy(timed_app: App, clock: Clock) -> None:
    def taken_over(message: Message) -> None:
        # The lease ran out while the provider answered: another worker holds the delivery now.
        with timed_app.sessions() as session, session.begin():
            session.execute(update(DELIVERIES).values(claim_id="another-worker"))

    capture = CaptureAdapter(fail_with=taken_over)
    deliverer = build_deliverer(timed_app, adapters={"email": capture, "sms": capture})
    [brief] = planned(timed_app, clock, [recipient_line("ann", "UTC", BRIEF)])
    assert deliverer.deliver_batch([brief.id or 0]).stale == 1
    assert copies(timed_app) == 0


def test_outcomes_written_together_keep_their_copies(
    timed_app: App, deliverer: Deliverer, clock: Clock, capture: CaptureAdapter
) -> None:
    # A delivery held back at send time waits for the next provider call's write, so the sent
    # message's outcome is written with others: with another final (PostgreSQL: one statement),
    # and with a release (one transaction).
    names = ("dee", "ann", "eve", "bob")
    dee, ann, eve, bob = planned(timed_app, clock, [recipient_line(n, "UTC", BRIEF) for n in names])
    with timed_app.sessions() as session, session.begin():
        r = RECIPIENTS.c
        session.execute(update(RECIPIENTS).where(r.external_id == "dee").values(email_opt_out=True))
        quiet = {"email_quiet_start": time(12, 0), "email_quiet_end": time(13, 0)}
        session.execute(update(RECIPIENTS).where(r.external_id == "eve").values(**quiet))
    first = deliverer.deliver_batch([dee.id or 0, ann.id or 0])
    assert (first.suppressed, first.sent) == (1, 1), first
    second = deliverer.deliver_batch([eve.id or 0, bob.id or 0])
    assert (second.waiting, second.sent) == (1, 1), second
    assert [shown(timed_app, d.id or 0)["message"] is not None for d in (dee, ann, eve, bob)] == [
        False,
        True,
        False,
        True,
    ]
    assert shown(timed_app, bob.id or 0)["message"]["headers"]["To"] == "bob@example.com"


def test_a_long_message_is_cut_to_the_setting(
    settings: Settings, clock: Clock, capture: CaptureAdapter
) -> None:
    app = _app(settings, clock, stored_message_max_bytes=1024)
    try:
        brief = notified(app, clock, "ann", {"headline": "x" * 5000})
        build_deliverer(app, adapters={"email": capture, "sms": capture}).deliver_batch([brief])
        message = shown(app, brief)["message"]
        assert message["cut"] is True and message["size"] > 5000
        assert "bytes kept (PLANNER_STORED_MESSAGE_MAX_BYTES)]" in message["text"]
        kept = [message["subject"], message["text"], message["html"], *message["headers"].values()]
        assert sum(len(part.encode()) for part in kept if part) <= 1024
        assert capture.sent[0].text and "x" * 5000 in capture.sent[0].text, "only the copy is cut"
    finally:
        app.close()


def test_no_copy_is_kept_when_the_setting_is_zero(
    settings: Settings, clock: Clock, capture: CaptureAdapter
) -> None:
    app = _app(settings, clock, stored_message_max_bytes=0)
    try:
        [brief] = planned(app, clock, [recipient_line("ann", "UTC", BRIEF)])
        assert (
            build_deliverer(app, adapters={"email": capture, "sms": capture})
            .deliver_batch([brief.id or 0])
            .sent
        )
        assert copies(app) == 0
    finally:
        app.close()


def test_copies_are_dropped_past_their_retention_in_bounded_batches(
    timed_app: App, deliverer: Deliverer, clock: Clock
) -> None:
    rows = planned(timed_app, clock, [recipient_line(f"r{i}", "UTC", BRIEF) for i in range(7)])
    assert deliverer.deliver_batch([r.id or 0 for r in rows]).sent == 7
    sent_at = clock.now
    with timed_app.sessions() as session, session.begin():
        first_two = select(DELIVERIES.c.id).order_by(DELIVERIES.c.id).limit(2).scalar_subquery()
        session.execute(
            update(DELIVERY_MESSAGES)
            .where(DELIVERY_MESSAGES.c.delivery_id.in_(first_two))
            .values(kept_at=sent_at + timedelta(days=1))
        )
    retention = timed_app.settings.stored_message_retention
    assert drop_old_copies(timed_app, sent_at + retention) == 0, "kept exactly the retention: not yet"
    later = sent_at + retention + timedelta(seconds=1)
    assert drop_old_copies(timed_app, later, batch=2, batches=2) == 4, "two batches of two in one pass"
    assert copies(timed_app) == 3
    clock.now = later
    run_maintenance(timed_app)  # the workers' pass takes the rest that is due
    assert copies(timed_app) == 2
    clock.now = later + timedelta(days=1)
    run_maintenance(timed_app)
    assert copies(timed_app) == 0


def test_erasing_the_recipient_erases_the_copies(timed_app: App, deliverer: Deliverer, clock: Clock) -> None:
    rows = planned(timed_app, clock, [recipient_line(n, "UTC", BRIEF) for n in ("ann", "bob")])
    deliverer.deliver_batch([r.id or 0 for r in rows])
    erase(timed_app, "ann", clock.now)
    assert copies(timed_app) == 1
    assert shown(timed_app, rows[1].id or 0)["message"]["headers"]["To"] == "bob@example.com"


def test_the_message_is_never_logged(
    timed_app: App, deliverer: Deliverer, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    secret_words = "Sesame-7f3c-headline"
    brief = notified(timed_app, clock, "ann", {"headline": secret_words})
    captured: list[dict[str, Any]] = []
    saved = structlog.get_config()
    structlog.configure(
        processors=[lambda _l, _m, event: captured.append(dict(event)) or ""], cache_logger_on_first_use=False
    )
    try:
        with caplog.at_level(logging.DEBUG):
            assert deliverer.deliver_batch([brief]).sent == 1
            run_maintenance(timed_app)
    finally:
        structlog.configure(**saved)
    assert secret_words in shown(timed_app, brief)["message"]["text"], "kept"
    assert captured, "the worker logged its outcome"
    logged = json.dumps(captured, default=str) + caplog.text
    assert secret_words not in logged and "Your daily brief" not in logged
