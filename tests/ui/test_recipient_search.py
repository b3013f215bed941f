"""Finding recipients in the dashboard: the search box, the filters and the pages, in Chromium."""

from __future__ import annotations

from typing import Any

from planner.app import App
from planner.core.recipient_search import RecipientSearch
from planner.readmodels.recipients import list_recipients
from tests.ui.conftest import follow


def _ids(page: Any) -> list[str]:
    return page.locator("#recipients tbody td:first-child a").all_inner_texts()


def test_search_by_email_or_phone_then_open_the_recipient(page: Any) -> None:
    page.goto("/ui/recipients")
    page.fill("#recipient-search input[name=q]", "Rita@EXAMPLE.com")
    follow(page, "#recipient-search button[type=submit]")
    assert _ids(page) == ["rita"]
    page.fill("#recipient-search input[name=q]", "+33 6 12-34-56-78")
    follow(page, "#recipient-search button[type=submit]")
    assert _ids(page) == ["rita"]
    row = page.locator("#recipients tbody tr").first.inner_text()
    assert "Europe/Paris" in row and "weekly_digest on email" in row
    follow(page, "#recipients a:text('rita')")
    assert page.locator("h1").inner_text().startswith("rita")


def test_id_prefix_filters_and_pages(page: Any, ui_app: App) -> None:
    page.goto("/ui/recipients?q=u-1")
    first = _ids(page)
    assert len(first) == 50 and all(i.startswith("u-1") for i in first) and first == sorted(first)
    follow(page, "a[rel=next]")
    second = _ids(page)
    assert second and second[0] > first[-1] and all(i.startswith("u-1") for i in second)
    follow(page, "a[rel=first]")
    assert _ids(page) == first

    page.goto("/ui/recipients")
    page.fill("#recipient-search input[name=zone]", "Europe/Paris")
    page.select_option("#recipient-search select[name=opted_out]", "email")
    follow(page, "#recipient-search button[type=submit]")
    with ui_app.sessions() as session:
        wanted = list_recipients(session, RecipientSearch(zone="Europe/Paris", opted_out="email"), limit=50)
    assert _ids(page) == [r["id"] for r in wanted.rows] and "rita" in _ids(page)
    assert page.locator("#recipient-search select[name=opted_out]").input_value() == "email"


def test_a_bad_search_gets_a_400_page_naming_the_field(page: Any) -> None:
    for path, field in (
        ("/ui/recipients?q=ann@", "q"),
        ("/ui/recipients?zone=Mars/Base", "zone"),
        ("/ui/recipients?invalid=yes", "invalid"),
        ("/ui/recipients?after=a%20b", "after"),
    ):
        response = page.goto(path)
        assert response.status == 400, path
        assert page.locator("#error-message").inner_text().startswith(f"{field}: "), path
