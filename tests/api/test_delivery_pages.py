"""``GET /v1/deliveries`` a page at a time: a stable order (scheduled time, then id), the next page named by
a cursor in the Link header, and a limit above the maximum answered by a 422 naming field, value and
bound, over real HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import insert, select

from planner.app import App
from planner.core.paging import encode_cursor
from planner.store.db import transaction
from planner.store.tables import DELIVERIES, RECIPIENTS
from tests.api.test_api import AUTH, TOKEN, Switch, serve
from tests.api.test_api import server as server
from tests.commands.test_ops import add_recipient

AT = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
_NEXT = re.compile(r'^<(/v1/deliveries\?[^>]+)>; rel="next"$')


@pytest.fixture
def client(server: tuple[Switch, str], app: App) -> Iterator[httpx.Client]:
    app.settings.api_token = SecretStr(TOKEN)
    with serve(server, app) as http:
        yield http


def add(app: App, n: int, due: datetime) -> None:
    """``n`` sent deliveries of u-1, all due at ``due`` (ties: the id decides the order)."""
    with transaction(app.sessions) as session:
        recipient_id = session.scalar(select(RECIPIENTS.c.id).where(RECIPIENTS.c.external_id == "u-1"))
        base = {"recipient_id": recipient_id, "kind": "reminder", "channel": "email", "queue": "default",
                "local_date": due.date(), "scheduled_at": due, "status": "sent", "attempts": 1,
                "created_at": due, "updated_at": due}  # fmt: skip
        session.execute(
            insert(DELIVERIES), [{**base, "dedup_key": f"k-{due.isoformat()}-{i}"} for i in range(n)]
        )


def test_pages_follow_the_link_in_a_stable_order_and_a_row_added_meanwhile_comes_once(
    client: httpx.Client, app: App
) -> None:
    add_recipient(app)
    add(app, 5, AT)
    add(app, 2, AT + timedelta(hours=1))
    seen: list[int] = []
    url: str | None = "/v1/deliveries?limit=3"
    pages = 0
    while url is not None:
        response = client.get(url, headers=AUTH)
        assert response.status_code == 200, response.text
        seen += [row["id"] for row in response.json()]
        pages += 1
        if pages == 1:
            add(app, 1, AT + timedelta(minutes=30))  # lands between the pages already read and the rest
        link = response.headers.get("link")
        url = _NEXT.match(link).group(1) if link else None  # type: ignore[union-attr]
    assert pages == 3
    assert len(seen) == len(set(seen)) == 8
    with app.sessions() as session:
        ordered = list(
            session.scalars(select(DELIVERIES.c.id).order_by(DELIVERIES.c.scheduled_at, DELIVERIES.c.id))
        )
    assert seen == ordered


def test_a_limit_above_the_maximum_and_a_bad_cursor_are_422s_naming_them(client: httpx.Client) -> None:
    too_many = client.get("/v1/deliveries", params={"limit": 5000}, headers=AUTH)
    assert too_many.status_code == 422
    problem = too_many.json()
    assert problem["detail"] == (
        "limit: 5000 is invalid; expected a whole number from 1 to 1000; "
        "page on with the cursor of the previous page"
    )
    assert (
        problem["errors"][0] | {"loc": ["query", "limit"], "field": "limit", "input": 5000}
        == problem["errors"][0]
    )
    garbled = client.get("/v1/deliveries", params={"after": "not-a-cursor"}, headers=AUTH)
    assert garbled.status_code == 422
    assert garbled.json()["detail"].startswith("after: 'not-a-cursor' is invalid; expected a cursor")
    huge_id = encode_cursor(datetime(2026, 3, 1, tzinfo=UTC), 10**30)  # no database holds such an id
    forged = client.get("/v1/deliveries", params={"after": huge_id}, headers=AUTH)
    assert forged.status_code == 422
    assert forged.json()["detail"].startswith(f"after: '{huge_id[:40]}")
    assert "is invalid; expected a cursor" in forged.json()["detail"]
