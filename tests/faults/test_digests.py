"""Digests end to end: events posted over HTTP, real worker processes, a real SMTP server that counts
what arrives (and reads it), on SQLite and PostgreSQL.

A digest delivery is put straight into the database for its subscription, as the rest of the fault
suite does (planning a digest occurrence is ordinary planning, covered elsewhere); what is tested here
is which events each message lists, across a send, a crash and a restart.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from sqlalchemy import insert, select

from planner.app import App
from planner.auth import create_token
from planner.dispatch.reassign import requeue
from planner.store.tables import DELIVERIES, DIGEST_EVENTS, SUBSCRIPTIONS
from tests.faults.harness import Child, process_env, rows, serving_api, start, statuses, wait_for
from tests.faults.servers import FaultSmtp

KIND = "comments_digest"
ANN = {
    "timezone": "Europe/Paris",
    "email": "ann@example.com",
    "quiet_hours": {"email": "none"},
    "subscriptions": [{"kind": KIND, "channel": "email", "at": "08:00", "days": "daily", "digest": True}],
}


@pytest.fixture
def http(any_app: App) -> Iterator[httpx.Client]:
    with serving_api(any_app) as client:
        token = create_token(any_app, "crm", ["read", "write"], datetime.now(UTC))
        client.headers["Authorization"] = f"Bearer {token}"
        assert client.put("/v1/recipients/ann", json=ANN).status_code == 201
        yield client


def post_event(http: httpx.Client, author: str, key: str | None = None) -> httpx.Response:
    body = {"recipient_id": "ann", "kind": KIND, "data": {"author": author, "text": f"hi from {author}"}}
    response = http.post("/v1/events", json=body | ({"idempotency_key": key} if key else {}))
    assert response.status_code in (200, 201), response.text
    return response


def due_digest(app: App, occurrence: int) -> int:
    """A digest delivery due now for ann's subscription (its n-th occurrence), handed to RQ."""
    now = datetime.now(UTC)
    with app.sessions() as session, session.begin():
        sub = session.execute(select(SUBSCRIPTIONS.c.id, SUBSCRIPTIONS.c.recipient_id)).one()
        delivery_id = session.scalar(
            insert(DELIVERIES)
            .values(
                # A planned key carries its local date (PostgreSQL's partitions hold it to local_date).
                dedup_key=f"sub:{sub.id}:{now.date().isoformat()}-test-{occurrence}",
                local_date=now.date(),
                recipient_id=sub.recipient_id,
                subscription_id=sub.id,
                kind=KIND,
                channel="email",
                queue="default",
                occurrence_at=now,
                scheduled_at=now,
                status="planned",
                attempts=0,
                created_at=now,
                updated_at=now,
            )
            .returning(DELIVERIES.c.id)
        )
    assert delivery_id is not None
    requeue(app.sessions, app.redis, [delivery_id], now)
    return delivery_id


def listed(message: EmailMessage) -> list[str]:
    """The authors a digest message lists, in its order."""
    body = message.get_body(("plain",))
    assert body is not None
    lines = body.get_content().splitlines()
    return [line.split(" ")[3].rstrip(":") for line in lines if line.startswith("- ")]


def test_seven_events_are_one_message_an_event_during_the_send_waits_and_none_is_skipped(
    any_app: App, http: httpx.Client, smtp: tuple[FaultSmtp, int], tmp_path: Path, children: list[Child]
) -> None:
    handler, port = smtp
    for i in range(7):
        assert post_event(http, f"user{i}", key=f"comment-{i}").status_code == 201
    repeated = post_event(http, "user0", key="comment-0")
    assert repeated.status_code == 200 and repeated.json()["created"] is False, "a retried post is harmless"

    def post_during_the_send(n: int) -> None:
        # The worker claimed the digest and its message is arriving: this event is too late for it.
        if n == 1:
            post_event(http, "late")

    handler.on_data = post_during_the_send
    worker = start(process_env(any_app, smtp_port=port), tmp_path / "worker.log", "worker")
    children.append(worker)
    first = due_digest(any_app, 1)
    wait_for(lambda: rows(any_app)[first].status == "sent", "the first digest to be sent")
    [message] = handler.messages
    assert message["Subject"] == "You have 7 new comments"
    assert listed(message) == [f"user{i}" for i in range(7)], "one message, the seven events, oldest first"

    handler.on_data = None
    second = due_digest(any_app, 2)
    wait_for(lambda: rows(any_app)[second].status == "sent", "the second digest to be sent")
    assert len(handler.messages) == 2 and listed(handler.messages[1]) == ["late"]
    assert handler.messages[1]["Subject"] == "You have 1 new comment"

    third = due_digest(any_app, 3)
    wait_for(lambda: rows(any_app)[third].status != "queued", "the third digest to be settled")
    worker.popen.send_signal(signal.SIGTERM)
    assert worker.wait() == 0, worker.output()
    assert (rows(any_app)[third].status, rows(any_app)[third].reason) == ("skipped", "empty_digest")
    assert len(handler.messages) == 2, "an empty digest sends nothing"
    with any_app.sessions() as session:
        bound = session.execute(select(DIGEST_EVENTS.c.delivery_id)).scalars().all()
    assert sorted(bound) == [first] * 7 + [second], "each event in exactly one sent digest"


def test_a_worker_killed_after_claiming_a_digest_restarts_with_the_same_events_sent_once(
    any_app: App, http: httpx.Client, smtp: tuple[FaultSmtp, int], tmp_path: Path, children: list[Child]
) -> None:
    handler, port = smtp
    for i in range(5):
        post_event(http, f"user{i}")
    env = process_env(any_app, smtp_port=port)
    victim: list[Child] = []

    def kill_at_mail_from(n: int) -> None:
        if n == 1:
            wait_for(lambda: victim, "the worker to be registered")
            victim[0].kill()

    handler.on_mail = kill_at_mail_from
    doomed = start(env, tmp_path / "doomed.log", "worker", "--burst")
    children.append(doomed)
    victim.append(doomed)
    first = due_digest(any_app, 1)
    wait_for(lambda: doomed.popen.poll() is not None, "the worker to be killed at its MAIL FROM")
    assert statuses(any_app) == {"sending": 1} and not handler.messages, "claimed, bound, never sent"
    # Events arriving while the claimed digest waits for its lease to expire belong to the next one.
    post_event(http, "while-down-1")
    post_event(http, "while-down-2")
    handler.on_mail = None
    rescuer = start(env, tmp_path / "rescuer.log", "worker", "--recovery-interval", "0.2")
    children.append(rescuer)
    wait_for(lambda: rows(any_app)[first].status == "sent", "the rescuer to send the claimed digest")
    [message] = handler.messages
    assert listed(message) == [f"user{i}" for i in range(5)], "the first claim's events, once"
    assert rows(any_app)[first].attempts == 2
    second = due_digest(any_app, 2)
    wait_for(lambda: rows(any_app)[second].status == "sent", "the next digest to be sent")
    rescuer.popen.send_signal(signal.SIGTERM)
    assert rescuer.wait() == 0, rescuer.output()
    assert len(handler.messages) == 2 and listed(handler.messages[1]) == ["while-down-1", "while-down-2"]
