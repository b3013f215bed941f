"""In Chromium: the unsubscribe page (one button acting for its recipient) cannot be framed by another
page, while a page without the headers can (the control: the browser really frames what it may)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from planner.app import App
from planner.core.unsubscribe import UnsubscribeTarget, sign
from planner.settings import Settings
from planner.store.queries import recipient_by_external_id
from tests.commands.test_ops import add_recipient
from tests.http_server import serving

SECRET = "the-signing-secret-of-this-test!"


@pytest.fixture
def served(settings: Settings) -> Iterator[tuple[App, str]]:
    app = App(settings.model_copy(update={"signing_secret": SecretStr(SECRET)}))
    with serving(app) as url:
        yield app, url
    app.close()


def _framed(context: Any, src: str) -> Any:
    """A page of another origin framing ``src``; the frame once it has loaded (or been refused)."""
    page = context.new_page()
    page.set_default_timeout(5000)
    page.set_content(f'<h1>Win a prize</h1><iframe src="{src}" width="600" height="400"></iframe>')
    page.wait_for_load_state("load")
    [frame] = page.main_frame.child_frames
    return frame


def test_the_unsubscribe_page_cannot_be_framed(browser: Any, served: tuple[App, str]) -> None:
    app, url = served
    add_recipient(app)
    with app.sessions() as db:
        row_id = recipient_by_external_id(db, "u-1").id
    assert row_id is not None
    token = sign(SECRET.encode(), UnsubscribeTarget(row_id, "reminder", "email"))

    context = browser.new_context()
    control = _framed(context, f"{url}/healthz")
    assert control.url == f"{url}/healthz" and "ok" in control.content()

    frame = _framed(context, f"{url}/u/{token}")
    assert frame.url != f"{url}/u/{token}", frame.url  # Chromium put its error page there instead
    assert frame.locator("button").count() == 0
    assert "Unsubscribe" not in frame.content()
    context.close()
