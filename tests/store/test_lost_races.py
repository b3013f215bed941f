"""An insert that loses a race for a unique key is written again once, in a new transaction; losing
twice is a conflict the interfaces answer as such (HTTP 409 with Retry-After), never a defect."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request

from planner.api.problems import planner_error
from planner.app import App, translate_error
from planner.errors import ConcurrentChange
from planner.store.db import Session, lost_a_race, transaction_retried_once
from planner.store.tables import RECIPIENTS

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def new_recipient(session: Session, external_id: str = "taken") -> None:
    row = {"external_id": external_id, "timezone": "UTC", "email_opt_out": False, "sms_opt_out": False}
    session.execute(insert(RECIPIENTS).values(**row, created_at=NOW, updated_at=NOW))


def test_the_loser_of_a_race_writes_once_more_then_gives_up_as_a_conflict(app: App) -> None:
    with app.sessions() as session, session.begin():
        new_recipient(session)  # the winner, committed
    attempts: list[int] = []

    def work(session: Session) -> Any:
        attempts.append(1)
        new_recipient(session)  # a writer that only inserts loses every time

    with pytest.raises(IntegrityError) as lost:
        transaction_retried_once(app.sessions, work)
    assert len(attempts) == 2
    assert lost_a_race(lost.value)
    conflict = translate_error(lost.value)
    assert isinstance(conflict, ConcurrentChange)
    request = Request({"type": "http", "method": "PUT", "path": "/", "headers": [], "query_string": b""})
    answer = planner_error(request, conflict)
    assert answer.status_code == 409 and answer.headers["retry-after"] == "1"
    assert b"send the request again" in bytes(answer.body)


def test_other_integrity_errors_are_not_races(app: App) -> None:
    def work(session: Session) -> None:
        session.execute(insert(RECIPIENTS).values(external_id="x", timezone=None))  # NOT NULL

    with pytest.raises(IntegrityError) as failed:
        transaction_retried_once(app.sessions, work)
    assert not lost_a_race(failed.value) and translate_error(failed.value) is None
