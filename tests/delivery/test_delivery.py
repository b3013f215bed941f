"""The delivery job on real databases and Redis: claims, re-checks, retries, dead letters, limits."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from adapters import Message, PermanentError, TransientError
from adapters.capture import CaptureAdapter
from planner.app import App, build_deliverer, retry_policy
from planner.commands.importer import import_lines
from planner.delivery.deliverer import Deliverer
from planner.delivery.message import message_id_for
from planner.dispatch.leases import recover_expired_leases
from planner.settings import Settings
from planner.store.claims import claim
from planner.store.dead_letters import groups_in
from planner.store.models import Delivery, Recipient
from planner.store.tables import DELIVERY_EVENTS
from tests.helpers import Clock, jobs_in_redis, recipient_line, runner, timelines, unthrottled_app

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def capture() -> CaptureAdapter:
    return CaptureAdapter()


@pytest.fixture
def timed_app(settings: Settings, clock: Clock) -> Iterator[App]:
    app = unthrottled_app(settings, clock)
    yield app
    app.close()


@pytest.fixture
def deliverer(timed_app: App, capture: CaptureAdapter) -> Deliverer:
    return build_deliverer(timed_app, adapters={"email": capture, "sms": capture})


def plan(app: App, lines: list[str]) -> list[Delivery]:
    import_lines(app.sessions, lines, NOW)
    runner(app).run(NOW, HOUR)
    return rows(app)


def rows(app: App) -> list[Delivery]:
    with app.sessions() as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


def events(app: App, delivery_id: int) -> list[str]:
    return [e["event"] for e in timelines(app)[delivery_id]]


BRIEF = [{"kind": "daily_brief", "channel": "email", "at": "12:30"}]


def test_due_delivery_is_rendered_sent_and_recorded(
    timed_app: App, deliverer: Deliverer, clock: Clock, capture: CaptureAdapter
) -> None:
    [planned] = plan(timed_app, [recipient_line("ann", "UTC", BRIEF)])
    assert deliverer.deliver_batch([planned.id or 0]).claimed == 0, "not due yet: nothing is claimed"
    [early] = rows(timed_app)
    assert early.status == "queued" and early.job_id != planned.job_id, "an early job hands over to a new one"
    assert jobs_in_redis(timed_app.redis)[early.job_id or ""] == [planned.id]
    clock.now = planned.scheduled_at
    report = deliverer.deliver_batch([planned.id or 0])
    assert (report.claimed, report.sent) == (1, 1)
    [message] = capture.sent
    assert message.to == "ann@example.com" and message.subject == "Your daily brief for 2026-03-02"
    assert message.message_id == message_id_for(planned.id or 0, planned.dedup_key)
    [sent] = rows(timed_app)
    assert (sent.status, sent.attempts, sent.sent_at) == ("sent", 1, clock.now)
    assert sent.provider_message_id == f"capture-{planned.id}"
    assert events(timed_app, sent.id or 0) == ["planned", "rescheduled_early", "sent"]
    with timed_app.sessions() as session:
        stored = session.scalars(select(DELIVERY_EVENTS.c.event)).all()
    assert stored == ["rescheduled_early"], "the first entry and a plain sent are implied by the row"


@pytest.mark.parametrize("racers", [2, 4])
def test_racing_workers_and_duplicate_jobs_call_the_provider_once(
    timed_app: App, deliverer: Deliverer, clock: Clock, capture: CaptureAdapter, racers: int
) -> None:
    planned = plan(timed_app, [recipient_line(f"u{i}", "UTC", BRIEF) for i in range(30)])
    clock.now = NOW + HOUR
    ids = [d.id or 0 for d in planned]
    barrier = threading.Barrier(racers)

    def race() -> None:
        barrier.wait()
        deliverer.deliver_batch(ids)

    threads = [threading.Thread(target=race) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(m.delivery_id for m in capture.attempts) == sorted(ids)
    assert {d.status for d in rows(timed_app)} == {"sent"}
    # A late duplicate job is a no-op too.
    assert deliverer.deliver_batch(ids).claimed == 0


def test_transient_errors_retry_with_backoff_then_die(
    timed_app: App, deliverer: Deliverer, clock: Clock, capture: CaptureAdapter
) -> None:
    [planned] = plan(timed_app, [recipient_line("ann", "UTC", BRIEF)])

    def flaky(message: Message) -> None:
        raise TransientError("421 try later")

    capture.fail_with = flaky
    clock.now = planned.scheduled_at
    policy = retry_policy(timed_app.settings)
    for attempt in range(1, policy.max_attempts + 1):
        report = deliverer.deliver_batch([planned.id or 0])
        assert report.claimed == 1
        [current] = rows(timed_app)
        assert current.attempts == attempt
        if attempt < policy.max_attempts:
            assert current.status == "retrying" and current.reason == "transient_failure"
            delay = current.scheduled_at - clock.now
            ceiling = min(policy.cap, policy.base * 2 ** (attempt - 1))
            assert ceiling / 2 <= delay <= ceiling
            assert jobs_in_redis(timed_app.redis)[current.job_id or ""] == [current.id]
            assert deliverer.deliver_batch([planned.id or 0]).claimed == 0, "not before its backoff"
            clock.now = current.scheduled_at
    [dead] = rows(timed_app)
    assert (dead.status, dead.reason, dead.attempts) == ("dead", "attempts_exhausted", policy.max_attempts)
    assert "421 try later" in (dead.last_error or "")
    assert len(capture.attempts) == policy.max_attempts and capture.sent == []


def test_retry_after_is_honoured(
    timed_app: App, deliverer: Deliverer, clock: Clock, capture: CaptureAdapter
) -> None:
    [planned] = plan(timed_app, [recipient_line("ann", "UTC", BRIEF)])

    def busy(message: Message) -> None:
        raise TransientError("429", retry_after=900)

    capture.fail_with = busy
    clock.now = planned.scheduled_at
    deliverer.deliver_batch([planned.id or 0])
    [current] = rows(timed_app)
    assert current.scheduled_at - clock.now >= timedelta(seconds=900)


def test_permanent_invalid_number_kills_delivery_and_suppresses_future_sms(
    timed_app: App, deliverer: Deliverer, clock: Clock, capture: CaptureAdapter
) -> None:
    sms = [{"kind": "reminder", "channel": "sms", "at": "12:30"}]
    [planned] = plan(
        timed_app,
        [recipient_line("ann", "UTC", sms, quiet_hours={"sms": "none"})],
    )

    def invalid(message: Message) -> None:
        raise PermanentError("21211 invalid 'To' number", invalid_address=True)

    capture.fail_with = invalid
    clock.now = planned.scheduled_at
    deliverer.deliver_batch([planned.id or 0])
    [dead] = rows(timed_app)
    assert (dead.status, dead.reason, dead.attempts) == ("dead", "permanent_failure", 1)
    with timed_app.sessions() as session:
        assert "21211" in (session.scalars(select(Recipient)).one().sms_invalid or "")
    runner(timed_app).run(NOW + timedelta(days=1), HOUR)
    tomorrow = rows(timed_app)[-1]
    assert (tomorrow.status, tomorrow.reason) == ("suppressed", "invalid_channel")


def test_one_refusal_of_several_recipients_is_one_dead_letter_group(
    timed_app: App, deliverer: Deliverer, clock: Clock, capture: CaptureAdapter
) -> None:
    """The provider repeats each recipient's number in its refusal: recorded with ``<address>``
    instead, the deaths share one error, so the dead-letter page counts one group of two."""
    sms = [{"kind": "reminder", "channel": "sms", "at": "12:30"}]
    lines = [
        recipient_line(rid, "UTC", sms, phone=phone, quiet_hours={"sms": "none"})
        for rid, phone in (("ann", "+12125550101"), ("bob", "+12125550102"))
    ]
    planned = plan(timed_app, lines)

    def invalid(message: Message) -> None:
        raise PermanentError(f"The 'To' number {message.to} is not valid.", invalid_address=True)

    capture.fail_with = invalid
    clock.now = planned[0].scheduled_at
    deliverer.deliver_batch([d.id or 0 for d in planned])
    assert {d.last_error for d in rows(timed_app)} == {"The 'To' number <address> is not valid."}
    with timed_app.sessions() as session:
        [(key, figures)] = groups_in(session, None).items()
        invalid_reasons = {r.sms_invalid for r in session.scalars(select(Recipient))}
    assert (key.reason, figures.deaths) == ("permanent_failure", 2)
    assert invalid_reasons == {"The 'To' number <address> is not valid."}


def test_missing_template_is_a_permanent_failure(timed_app: App, deliverer: Deliverer, clock: Clock) -> None:
    [planned] = plan(
        timed_app, [recipient_line("ann", "UTC", [{"kind": "mystery", "channel": "email", "at": "12:30"}])]
    )
    clock.now = planned.scheduled_at
    deliverer.deliver_batch([planned.id or 0])
    [dead] = rows(timed_app)
    assert (dead.status, dead.reason) == ("dead", "permanent_failure")
    assert "template_missing" in (dead.last_error or "") and "mystery/email_subject.txt" in (
        dead.last_error or ""
    )


def test_send_time_rechecks_opt_out_and_quiet_hours(
    timed_app: App, deliverer: Deliverer, clock: Clock, capture: CaptureAdapter
) -> None:
    lines = [recipient_line("out", "UTC", BRIEF), recipient_line("moved", "UTC", BRIEF)]
    planned = plan(timed_app, lines)
    with timed_app.sessions() as session, session.begin():
        session.execute(update(Recipient).where(Recipient.external_id == "out").values(email_opt_out=True))
        # 'moved' now lives in Tokyo with email quiet hours 21:00-08:00: 12:30Z is 21:30 there.
        session.execute(
            update(Recipient)
            .where(Recipient.external_id == "moved")
            .values(
                timezone="Asia/Tokyo",
                email_quiet_start=datetime(2000, 1, 1, 21).time(),
                email_quiet_end=datetime(2000, 1, 1, 8).time(),
            )
        )
    clock.now = NOW + timedelta(minutes=30)
    report = deliverer.deliver_batch([d.id or 0 for d in planned])
    assert (report.suppressed, report.waiting, report.sent) == (1, 1, 0)
    out, moved = rows(timed_app)
    assert (out.status, out.reason) == ("suppressed", "opted_out")
    assert (moved.status, moved.reason, moved.attempts) == ("queued", "quiet_hours_deferred", 0)
    assert moved.scheduled_at == datetime(2026, 3, 2, 23, 0, tzinfo=UTC)  # 08:00 JST
    assert jobs_in_redis(timed_app.redis)[moved.job_id or ""] == [moved.id]
    clock.now = moved.scheduled_at
    assert deliverer.deliver_batch([moved.id or 0]).sent == 1
    assert capture.sent[0].recipient_id == "moved"


def test_rate_limit_puts_deliveries_back_without_using_an_attempt(
    timed_app: App, capture: CaptureAdapter, clock: Clock
) -> None:
    limited = App(timed_app.settings.model_copy(update={"rate_limit_email": "3/minute"}), clock=clock)
    try:
        deliverer = build_deliverer(limited, adapters={"email": capture, "sms": capture})
        planned = plan(limited, [recipient_line(f"u{i}", "UTC", BRIEF) for i in range(5)])
        clock.now = NOW + HOUR
        report = deliverer.deliver_batch([d.id or 0 for d in planned])
        assert (report.sent, report.waiting) == (3, 2)
        waiting = [d for d in rows(limited) if d.status == "queued"]
        assert [(d.reason, d.attempts) for d in waiting] == [("rate_limited", 0), ("rate_limited", 0)]
        assert all(d.scheduled_at > clock.now for d in waiting)
    finally:
        limited.close()


def test_expired_lease_is_recovered_and_resent_with_the_same_message_id(
    timed_app: App, deliverer: Deliverer, clock: Clock, capture: CaptureAdapter
) -> None:
    [planned] = plan(timed_app, [recipient_line("ann", "UTC", BRIEF)])
    clock.now = planned.scheduled_at
    with timed_app.sessions() as session, session.begin():
        assert claim(session, [planned.id or 0], None, "dead-worker", clock.now, deliverer.lease) == [
            planned.id
        ]
    # The claiming worker died here. Before the lease ends nothing happens...
    settings = timed_app.settings
    assert recover_expired_leases(timed_app.sessions, timed_app.redis, clock.now, retry_policy(settings)) == 0
    clock.now += settings.sending_lease + timedelta(seconds=1)
    assert recover_expired_leases(timed_app.sessions, timed_app.redis, clock.now, retry_policy(settings)) == 1
    [recovered] = rows(timed_app)
    assert (recovered.status, recovered.reason, recovered.attempts) == ("retrying", "lease_expired", 1)
    assert jobs_in_redis(timed_app.redis)[recovered.job_id or ""] == [recovered.id]
    deliverer.deliver_batch([planned.id or 0])
    [sent] = rows(timed_app)
    assert (sent.status, sent.attempts) == ("sent", 2)
    assert capture.sent[0].message_id == message_id_for(planned.id or 0, planned.dedup_key)


def test_delivery_older_than_max_lateness_is_missed_not_sent(
    timed_app: App, deliverer: Deliverer, clock: Clock, capture: CaptureAdapter
) -> None:
    [planned] = plan(timed_app, [recipient_line("ann", "UTC", BRIEF)])
    clock.now = planned.scheduled_at + timed_app.settings.max_lateness + timedelta(minutes=1)
    deliverer.deliver_batch([planned.id or 0])
    [missed] = rows(timed_app)
    assert (missed.status, missed.reason) == ("missed", "too_late")
    assert capture.attempts == []


def test_a_batch_that_outlasts_its_lease_leaves_what_was_recovered_to_the_new_job(
    timed_app: App, clock: Clock, capture: CaptureAdapter
) -> None:
    # A slow provider: the first message takes longer than the whole batch's lease. Meanwhile a
    # maintenance pass recovers the batch and another worker sends it. The slow worker must not then
    # send the rest again: only the message it had in flight goes twice (the most a lost lease costs).
    brief = [{"kind": "daily_brief", "channel": "email", "at": "12:00"}]
    lines = [recipient_line(f"r{i}", "UTC", brief) for i in range(3)]
    deliveries = plan(timed_app, lines)
    ids = [d.id or 0 for d in deliveries]
    lease = timed_app.settings.sending_lease
    other = build_deliverer(timed_app, adapters={"email": capture, "sms": capture})
    reports = []

    def slow_first_send(message: Message) -> None:
        if len(capture.attempts) == 1:
            clock.now += lease + timedelta(seconds=1)
            recovered = recover_expired_leases(
                timed_app.sessions, timed_app.redis, clock.now, timed_app.retry_policy
            )
            assert recovered == 3, "the whole batch, the message in flight included"
            reports.append(other.deliver_batch(ids))

    capture.fail_with = slow_first_send
    slow = build_deliverer(timed_app, adapters={"email": capture, "sms": capture}).deliver_batch(ids)
    sends = Counter(m.delivery_id for m in capture.sent)
    assert sends == {ids[0]: 2, ids[1]: 1, ids[2]: 1}, sends
    assert (slow.taken_over, slow.sent, reports[0].sent) == (2, 1, 3)
    with timed_app.sessions() as session:
        assert set(session.scalars(select(Delivery.status))) == {"sent"}
