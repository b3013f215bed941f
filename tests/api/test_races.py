"""Concurrent creators of the same recipient, over real HTTP against uvicorn, on SQLite and
PostgreSQL: every answer is a 200 or a 201 (or a 409 asking to send again), never a 500, and the
recipient exists once with the state one of them wrote."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from planner.app import App
from planner.store.tables import RECIPIENTS, SUBSCRIPTIONS
from tests.api import test_api

server = test_api.server  # the module's loopback uvicorn
AUTH = test_api.AUTH


@pytest.fixture
def base_url(server: tuple[test_api.Switch, str], app: App) -> Iterator[str]:
    app.settings.api_token = SecretStr(test_api.TOKEN)
    with test_api.serve(server, app):
        yield server[1]


def all_at_once(
    base_url: str, count: int, request: Callable[[httpx.Client, int], httpx.Response]
) -> list[httpx.Response]:
    """``count`` requests, each on its own connection and thread, released together."""
    barrier = threading.Barrier(count)
    answers: list[httpx.Response | BaseException] = [RuntimeError("not run")] * count

    def one(i: int) -> None:
        with httpx.Client(base_url=base_url, timeout=60) as client:
            barrier.wait()
            try:
                answers[i] = request(client, i)
            except BaseException as exc:  # reported below, with the others
                answers[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    failed = [a for a in answers if isinstance(a, BaseException)]
    assert not failed, failed[:3]
    return [a for a in answers if isinstance(a, httpx.Response)]


def document(i: int) -> dict[str, object]:
    return {
        "timezone": "Europe/Paris",
        "email": f"racer{i}@example.com",
        "subscriptions": [{"kind": "daily_brief", "channel": "email", "at": f"{8 + i % 10:02d}:00"}],
    }


def counts(app: App, external_id: str) -> tuple[int, int]:
    with app.engine.connect() as connection:
        recipients = connection.scalar(
            select(func.count()).select_from(RECIPIENTS).where(RECIPIENTS.c.external_id == external_id)
        )
        subscriptions = connection.scalar(select(func.count()).select_from(SUBSCRIPTIONS))
    return recipients or 0, subscriptions or 0


def test_fifty_parallel_puts_of_a_new_recipient_answer_200_or_201_never_500(base_url: str, app: App) -> None:
    answers = all_at_once(
        base_url, 50, lambda client, i: client.put("/v1/recipients/racer", json=document(i), headers=AUTH)
    )
    statuses = Counter(a.status_code for a in answers)
    assert set(statuses) <= {200, 201, 409}, (statuses, [a.text for a in answers if a.status_code >= 500][:2])
    assert statuses[201] == 1, statuses
    for conflict in (a for a in answers if a.status_code == 409):
        assert conflict.headers["retry-after"] and "send the request again" in conflict.json()["detail"]
    assert counts(app, "racer") == (1, 1)


def test_thirty_parallel_imports_of_one_new_recipient_answer_200_never_500(base_url: str, app: App) -> None:
    def post(client: httpx.Client, i: int) -> httpx.Response:
        line = json.dumps({"type": "recipient", "id": "racer", **document(i)})
        return client.post(
            "/v1/imports", content=line.encode(), headers={**AUTH, "content-type": "text/plain"}
        )

    answers = all_at_once(base_url, 30, post)
    statuses = Counter(a.status_code for a in answers)
    assert set(statuses) <= {200, 409}, (statuses, [a.text for a in answers if a.status_code >= 500][:2])
    created = sum(a.json()["recipients_created"] for a in answers if a.status_code == 200)
    assert created == 1
    assert counts(app, "racer") == (1, 1)
