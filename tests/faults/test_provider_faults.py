"""Provider failures through a real worker process: SMTP replies from aiosmtpd (and raw TCP servers
below SMTP), SMS replies from the loopback Messages API.

Each case checks the delivery's end state and what the server saw. Then every delivery is put in a
second, duplicate job and run again: a permanent refusal is never tried again, and nothing that is
not due is sent early.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from planner.app import App
from planner.core.job_batches import JobBatch
from planner.dispatch.outbox import enqueue_batches
from tests.faults.harness import (
    add_deliveries,
    assert_nothing_sending,
    enqueue,
    process_env,
    recipient_of,
    rows,
    start,
)
from tests.faults.servers import FaultSmtp, running_raw, running_sms, running_smtp


@dataclass(frozen=True)
class Case:
    address: str
    status: str
    reason: str | None
    #: What the server saw: for SMTP, RCPT TO commands and DATA received; for SMS, requests.
    seen: int
    invalid: bool = False
    opted_out: bool = False


SMTP_CASES = [
    Case("ok@example.com", "sent", None, 1),
    Case("tempfail@example.com", "retrying", "transient_failure", 1),  # 451 at RCPT
    Case("full@example.com", "retrying", "transient_failure", 1),  # 452 at RCPT
    Case("nouser@example.com", "dead", "permanent_failure", 1, invalid=True),  # 550 5.1.1
    Case("toobig@example.com", "dead", "permanent_failure", 1),  # 552 at DATA
    Case("spam@example.com", "dead", "permanent_failure", 1),  # 554 at DATA
    Case("drop@example.com", "retrying", "outcome_unknown", 1),  # dropped after the message: unknown
]
SMS_CASES = [
    Case("+15005550006", "sent", None, 1),
    Case("+15005550429", "retrying", "transient_failure", 1),  # 429 with Retry-After: 120
    Case("+15005550500", "retrying", "transient_failure", 1),
    Case("+15005550503", "retrying", "transient_failure", 1),
    Case("+15005551211", "dead", "permanent_failure", 1, invalid=True),
    Case("+15005551610", "suppressed", "opted_out", 1, opted_out=True),  # the recipient replied STOP
    Case("+15005550777", "retrying", "outcome_unknown", 1),  # no answer within the deadline: unknown
]


def _run_twice(app: App, env: dict[str, str], tmp_path: Path, ids: list[int]) -> None:
    """A burst worker sends; then the same deliveries travel in a second job, run by a second one."""
    for name in ("first", "second"):
        worker = start(env, tmp_path / f"{name}.log", "worker", "--burst")
        try:
            assert worker.wait() == 0, worker.output()
        finally:
            worker.stop()
        if name == "first":
            duplicate = JobBatch(f"dup-{uuid.uuid4().hex}", "default", "email", datetime.now(UTC), tuple(ids))
            enqueue_batches(app.redis, [duplicate], datetime.now(UTC))


def _check(app: App, ids: list[int], cases: list[Case], seen: Callable[[str], int], channel: str) -> None:
    deliveries = rows(app)
    for delivery_id, case in zip(ids, cases, strict=True):
        d = deliveries[delivery_id]
        assert (d.status, d.reason, d.attempts) == (case.status, case.reason, 1), case
        assert seen(case.address) == case.seen, f"{case.address}: seen {seen(case.address)} times"
        recipient = recipient_of(app, delivery_id)
        assert bool(getattr(recipient, f"{channel}_invalid")) is case.invalid, case
        assert getattr(recipient, f"{channel}_opt_out") is case.opted_out, case
        # Servers repeat the address in a refusal: stored as <address>, one error for every recipient.
        for stored in (d.last_error, getattr(recipient, f"{channel}_invalid")):
            assert case.address.lower() not in (stored or "").lower(), stored
        if case.invalid:
            assert "<address>" in (d.last_error or ""), d.last_error
    assert_nothing_sending(app)


@pytest.fixture
def smtp() -> Iterator[tuple[FaultSmtp, int]]:
    handler = FaultSmtp()
    with running_smtp(handler) as port:
        yield handler, port


def test_smtp_replies_end_each_delivery_in_its_state(
    pg_app: App, smtp: tuple[FaultSmtp, int], tmp_path: Path
) -> None:
    handler, port = smtp
    ids = add_deliveries(pg_app, [("email", c.address) for c in SMTP_CASES])
    enqueue(pg_app, ids)
    _run_twice(pg_app, process_env(pg_app, smtp_port=port), tmp_path, ids)

    def seen(address: str) -> int:
        data = handler.to(address)
        return data if data else handler.rcpts[address]

    _check(pg_app, ids, SMTP_CASES, seen, "email")


@pytest.mark.parametrize("mode", ["421", "silent"])
def test_smtp_server_refusing_at_connect_or_never_answering_is_transient(
    pg_app: App, tmp_path: Path, mode: str
) -> None:
    with running_raw(mode) as server:
        [delivery_id] = add_deliveries(pg_app, [("email", "ann@example.com")])
        enqueue(pg_app, [delivery_id])
        _run_twice(pg_app, process_env(pg_app, smtp_port=server.port), tmp_path, [delivery_id])
        assert server.connections == 1
    d = rows(pg_app)[delivery_id]
    assert (d.status, d.reason, d.attempts) == ("retrying", "transient_failure", 1)
    assert ("421" if mode == "421" else "timed out") in (d.last_error or ""), d.last_error


def test_sms_replies_end_each_delivery_in_its_state(pg_app: App, tmp_path: Path) -> None:
    with running_sms() as server:
        ids = add_deliveries(pg_app, [("sms", c.address) for c in SMS_CASES])
        enqueue(pg_app, ids)
        started = datetime.now(UTC)
        _run_twice(pg_app, process_env(pg_app, sms_url=server.base_url), tmp_path, ids)
        _check(pg_app, ids, SMS_CASES, server.to, "sms")
    limited = rows(pg_app)[ids[1]]
    # The provider's Retry-After (120 s) wins over the first backoff (15 to 30 s).
    assert (
        started + timedelta(seconds=120) <= limited.scheduled_at <= datetime.now(UTC) + timedelta(seconds=121)
    )
