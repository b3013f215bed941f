"""The unsubscribe link's page as its person sees it in Chromium: what they unsubscribe from, in
words the team set; unsubscribing and changing their mind; machines still get RFC 8058's answer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from planner.app import App
from planner.core.unsubscribe import UnsubscribeTarget, sign
from planner.store.queries import recipient_by_external_id
from planner.store.recipients import recipient_id_of
from tests.ui.conftest import SIGNING_SECRET, follow


def link(app: App, external_id: str, kind: str, channel: str) -> str:
    with app.sessions() as session:
        row_id = recipient_id_of(session, external_id)
    assert row_id is not None
    return "/u/" + sign(SIGNING_SECRET.encode(), UnsubscribeTarget(row_id, kind, channel))


def opted_out_kinds(app: App, external_id: str) -> list[str]:
    with app.sessions() as session:
        return sorted(recipient_by_external_id(session, external_id).opt_outs or [])


@pytest.fixture
def person(browser: Any, base_url: str) -> Iterator[Any]:
    """A browser without a dashboard session: the page needs none."""
    context = browser.new_context(base_url=base_url, viewport={"width": 800, "height": 640})
    tab = context.new_page()
    tab.set_default_timeout(5000)
    yield tab
    context.close()


def test_unsubscribe_then_change_your_mind(person: Any, ui_app: App) -> None:
    path = link(ui_app, "ann", "daily_brief", "sms")
    person.goto(path)
    assert person.locator("h1").inner_text() == "Unsubscribe from daily brief messages?"
    assert person.locator("#what").inner_text().startswith(
        "You receive daily brief messages by text message."
    )
    assert "daily_brief" not in person.locator("body").inner_text()
    assert person.evaluate("getComputedStyle(document.querySelector('main')).maxWidth") == "520px"

    follow(person, "#unsubscribe")
    assert person.url.endswith(path)  # back on the page, which now says what is true
    assert person.locator("h1").inner_text() == "You are unsubscribed"
    assert person.locator("#what").inner_text() == (
        "You will no longer receive daily brief messages by text message."
    )
    assert opted_out_kinds(ui_app, "ann") == ["daily_brief/sms"]

    follow(person, "#resubscribe")
    assert person.locator("h1").inner_text() == "Unsubscribe from daily brief messages?"
    assert opted_out_kinds(ui_app, "ann") == []


def test_the_team_s_name_for_the_kind(person: Any, ui_app: App) -> None:
    person.goto(link(ui_app, "rita", "weekly_digest", "email"))  # opted out in the data set
    assert person.locator("h1").inner_text() == "You are unsubscribed"
    assert person.locator("#what").inner_text() == "You will no longer receive the weekly digest by email."
    assert person.locator("#channel-off").count() == 0
    assert person.title() == "Unsubscribed"


def test_machines_get_the_rfc_8058_answer(person: Any, ui_app: App) -> None:
    path = link(ui_app, "ann", "daily_brief", "email")
    answer = person.request.post(
        path, data="List-Unsubscribe=One-Click", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert answer.status == 200 and answer.headers["content-type"] == "application/json"
    assert answer.json() == {"unsubscribed": True, "kind": "daily_brief", "channel": "email"}
    assert opted_out_kinds(ui_app, "ann") == ["daily_brief/email"]
    back = person.request.post(path, form={"action": "resubscribe"}, max_redirects=0)
    assert back.status == 303 and back.headers["location"] == path
    assert opted_out_kinds(ui_app, "ann") == []


def test_a_broken_link_gets_a_page_not_json(person: Any, ui_app: App) -> None:
    good = link(ui_app, "ann", "daily_brief", "sms")
    for path in (good[:-3] + "xyz", good[: len(good) // 2], "/u/not-a-token"):
        response = person.goto(path)
        assert response.status == 404, path
        assert person.locator("h1").inner_text() == "This link does not work", path
        assert "cut short" in person.locator("main").inner_text()
