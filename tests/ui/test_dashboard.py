"""The dashboard in a real browser: sign-in, the overview's figures, actions, a recipient across DST."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from rq import Queue
from sqlalchemy import text

from planner.app import App
from planner.core.paging import encode_cursor
from planner.store.queries import get_delivery, pause_list
from tests.ui.conftest import NOW, TOKEN, follow, sign_in


def test_refused_without_a_session(browser: Any, base_url: str) -> None:
    context = browser.new_context(base_url=base_url)
    page = context.new_page()
    for path in ("/ui", "/ui/deliveries?status=dead", "/ui/recipients/ann", "/ui/pauses"):
        page.goto(path)
        assert page.url.startswith(f"{base_url}/ui/login?next="), path
        assert page.locator("h1").inner_text() == "Sign in"
    refused = context.request.post("/ui/pauses", form={"target": "email", "action": "pause"})
    assert refused.status == 401
    assert "Not signed in" in refused.text()
    context.close()


def test_sign_in_with_a_wrong_then_the_right_token(browser: Any, base_url: str) -> None:
    context = browser.new_context(base_url=base_url)
    page = context.new_page()
    page.goto("/ui/dead")  # signing in returns to the page asked for
    page.fill("input[name=token]", "not-the-token")
    page.click("button[type=submit]")
    assert page.locator("#error-message").inner_text() == "That token is not valid."
    page.fill("input[name=token]", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/ui/dead")
    assert page.locator("h1").inner_text() == "Dead letters"
    assert page.locator("header .who span").inner_text() == "api-token"
    (cookie,) = [c for c in context.cookies() if c["name"] == "planner_ui"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and not cookie["secure"]  # plain http
    assert TOKEN not in cookie["value"]
    assert 11.9 * 3600 < cookie["expires"] - time.time() <= 12 * 3600
    page.click("text=Sign out")
    page.goto("/ui")
    assert "/ui/login" in page.url
    context.close()


def test_overview_figures_match_the_database(page: Any, ui_app: App) -> None:
    with ui_app.sessions() as session:
        rows = session.execute(
            text(
                "SELECT status, count(*) FROM delivery WHERE status IN ('planned', 'queued', 'sending',"
                " 'retrying') OR (status = 'dead' AND scheduled_at >= :dead_since)"
                " OR (status <> 'dead' AND scheduled_at >= :since) GROUP BY status"
            ),
            {"since": NOW - timedelta(hours=24), "dead_since": NOW - timedelta(days=7)},
        )
        counts = {str(status): int(n) for status, n in rows}
        everything = session.scalar(text("SELECT count(*) FROM delivery"))
    # The data set has all three (how many are dead depends on whether the retry test ran first).
    assert counts.get("dead") and counts.get("sent") and counts.get("queued")
    assert sum(counts.values()) < everything  # some settled rows are older than a day: left out
    page.goto("/ui")
    shown = {
        cell.get_attribute("data-status"): int(cell.inner_text())
        for cell in page.locator("#status-table td[data-status]").all()
    }
    assert {k: v for k, v in shown.items() if v} == counts
    assert int(page.locator("#dead-count").inner_text()) == counts["dead"]
    assert page.locator("#worker-count").inner_text() == "1"
    for row in page.locator("#queue-table tbody tr").all():
        name, waiting, scheduled = (c.inner_text() for c in row.locator("td").all())
        queue = Queue(name, connection=ui_app.redis)
        assert int(waiting) == queue.count, name
        assert int(scheduled) == queue.scheduled_job_registry.get_job_count(cleanup=False), name
    # The chart has one bar per (hour, channel, plain/deferred); London's 22:30 SMS is deferred.
    assert page.locator("svg.chart rect title", has_text="deferred by quiet hours").count() >= 1
    # New York's change on 2026-03-08 at 07:00Z, with ny-early's 02:30 among the moved wall times.
    ny = page.locator("#dst-table tr", has_text="America/New_York")
    assert "2026-03-08 07:00Z" in ny.inner_text() and "gap +60 min" in ny.inner_text()


def test_retry_a_dead_delivery_and_see_it_queued(page: Any, ui_app: App) -> None:
    page.goto("/ui/dead")
    assert page.locator("#windows [aria-current=page]").inner_text() == "last 7 days"
    assert page.locator("#dead-scope").inner_text().startswith("Deliveries scheduled since 2026-02-28 15:00")
    group = page.locator("section.group", has_text="550 5.1.1 mailbox unavailable")
    assert group.locator("h2 .count").inner_text() == "4"
    box = group.locator("input[name=id]").first
    delivery_id = int(box.get_attribute("value") or "0")
    box.check()
    group.locator("button", has_text="Retry selected").click()
    assert page.locator(".flash").inner_text() == f"1 queued again: {delivery_id}"
    page.goto(f"/ui/deliveries/{delivery_id}")
    assert page.locator("#delivery-status").inner_text() == "queued"
    last = page.locator("#timeline tbody tr").last.inner_text()
    assert "redriven" in last and "api-token" in last
    with ui_app.sessions() as session:
        stored = get_delivery(session, delivery_id)
    assert stored["status"] == "queued"
    assert stored["timeline"][-1]["detail"]["actor"] == "api-token"
    assert Queue("default", connection=ui_app.redis).fetch_job(stored["job_id"]) is not None


def test_pause_and_resume_a_channel(page: Any, ui_app: App) -> None:
    page.goto("/ui/pauses")
    page.click("#pause-sms")
    assert page.locator(".flash").inner_text() == "channel sms paused"
    assert page.locator("#pauses .paused-value").all_inner_texts() == ["sms"]
    assert [p["value"] for p in _pauses(ui_app)] == ["sms"]
    page.goto("/ui")
    assert page.locator("#paused-count").inner_text() == "1"
    page.goto("/ui/pauses")
    page.click("#resume-sms")
    assert page.locator(".flash").inner_text().startswith("channel sms resumed")
    assert page.locator("#pauses .paused-value").count() == 0
    assert _pauses(ui_app) == []


def test_pages_and_actions_work_with_scripts_disabled(browser: Any, base_url: str, ui_app: App) -> None:
    context = browser.new_context(base_url=base_url, java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(5000)
    sign_in(page, TOKEN)
    with ui_app.sessions() as session:
        dead_since = {"since": NOW - timedelta(days=7)}
        dead = session.scalar(
            text("SELECT count(*) FROM delivery WHERE status = 'dead' AND scheduled_at >= :since"), dead_since
        )
    assert page.locator("h1").inner_text() == "Overview"
    assert int(page.locator("#dead-count").inner_text()) == dead
    assert page.locator("label.live").is_hidden()  # the live-refresh box shows only with scripts
    page.goto("/ui/pauses")
    follow(page, "#pause-email")
    assert page.locator(".flash").inner_text() == "channel email paused"
    follow(page, "#resume-email")  # the page it leaves has a flash too: read the next one
    assert page.locator(".flash").inner_text().startswith("channel email resumed")
    assert _pauses(ui_app) == []
    context.close()


def test_recipient_across_the_dst_change(page: Any) -> None:
    page.goto("/ui/recipients")
    page.fill("input[name=id]", "ny-early")
    follow(page, "main button[type=submit]")
    assert page.locator("#zone").inner_text() == "America/New_York"
    rows = {r.locator("td").first.inner_text(): r for r in page.locator("#upcoming tbody tr").all()}
    before, gap, after = rows["2026-03-07 Sat"], rows["2026-03-08 Sun"], rows["2026-03-09 Mon"]
    assert before.locator(".local-time").inner_text() == "2026-03-07 02:30 -05:00 EST"
    assert gap.locator(".local-time").inner_text() == "2026-03-08 03:30 -04:00 EDT"  # 02:30 does not exist
    assert "DST gap: 02:30 does not exist, shifted +1:00 to 03:30 EDT" in gap.inner_text()
    assert "2026-03-08 07:30:00Z" in gap.inner_text()
    assert after.locator(".local-time").inner_text() == "2026-03-09 02:30 -04:00 EDT"
    page.fill("input[name=date]", "2026-03-08")
    follow(page, "text=Explain")
    verdicts = page.locator("section.group", has_text="night_report").inner_text()
    assert "on 2026-03-08" in verdicts and "gap" in verdicts


def test_a_post_without_the_csrf_token_is_refused(page: Any, ui_app: App) -> None:
    page.goto("/ui/pauses")
    page.evaluate("document.querySelector('#pause-email').form.querySelector('[name=csrf]').remove()")
    follow(page, "#pause-email")
    assert page.locator("h1").inner_text() == "403 · Refused"
    assert "CSRF token is missing or wrong" in page.locator("#error-message").inner_text()
    page.goto("/ui/pauses")
    page.evaluate("document.querySelector('#pause-email').form.querySelector('[name=csrf]').value = 'forged'")
    follow(page, "#pause-email")
    assert page.locator("h1").inner_text() == "403 · Refused"
    assert _pauses(ui_app) == []


def test_bad_input_gets_a_clear_4xx_page(page: Any) -> None:
    cases = {
        "/ui/deliveries?after=page-2": (400, "after"),
        f"/ui/deliveries?after={encode_cursor(NOW, 10**30)}": (400, "after"),
        "/ui/deliveries?status=lost": (400, "status"),
        "/ui/deliveries?since=yesterday": (400, "since"),
        "/ui/deliveries/abc": (400, "delivery id"),
        "/ui/deliveries/2147483647": (404, "delivery"),
        "/ui/recipients/ann?date=2026-02-30": (400, "date"),
        "/ui/recipients/nobody": (404, "nobody"),
        "/ui/static/../app.py": (404, ""),
    }
    for path, (status, word) in cases.items():
        response = page.goto(path)
        assert response.status == status, path
        if word:
            assert word in page.locator("#error-message").inner_text(), path


def test_deliveries_filters_and_pages(page: Any, ui_app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("planner.ui.pages.PER_PAGE", 2)  # the sample's sends fill several pages
    page.goto("/ui/deliveries")
    page.select_option("select[name=status]", "sent")
    follow(page, "text=Filter")
    statuses = set(page.locator("#deliveries-table tbody td:nth-child(7)").all_inner_texts())
    assert statuses == {"sent"}
    with ui_app.sessions() as session:
        sent = session.scalar(text("SELECT count(*) FROM delivery WHERE status = 'sent'"))
    seen = page.locator("#deliveries-table tbody tr").count()
    while page.locator("a[rel=next]").count():
        follow(page, "a[rel=next]")
        seen += page.locator("#deliveries-table tbody tr").count()
    assert seen == sent
    assert "status=sent" in page.url and "after=" in page.url  # the filter kept, the page by its cursor
    follow(page, "a[rel=first]")
    assert "after=" not in page.url and page.locator("#deliveries-table tbody tr").count()


def _pauses(app: App) -> list[dict[str, Any]]:
    with app.sessions() as session:
        return pause_list(session)


def test_the_delivery_page_shows_what_was_sent(page: Any, ui_app: App) -> None:
    with ui_app.sessions() as session:
        sent = session.scalar(
            text(
                "SELECT d.id FROM delivery d JOIN recipient r ON r.id = d.recipient_id "
                "WHERE r.external_id = 'u-30' AND d.status = 'sent' AND d.channel = 'email' "
                "AND d.kind = 'daily_brief' ORDER BY d.id LIMIT 1"
            )
        )
        planned = session.scalar(text("SELECT min(id) FROM delivery WHERE status IN ('planned', 'queued')"))
    page.goto(f"/ui/deliveries/{sent}")
    message = page.locator("#message")
    assert message.locator("#message-subject").inner_text() == "Your daily brief for 2026-03-06"  # in Sydney
    to = message.locator("tr.header[data-name=To] td").inner_text()
    assert to == "u-30@example.com"
    message_id = message.locator("tr.header[data-name=Message-ID] td").inner_text()
    assert message_id.startswith(f"<delivery-{sent}.")
    assert message.locator("#message-text").inner_text().startswith("Good morning u-30,\n\nhere is your")
    # The HTML body as its source, as text: not rendered inside the dashboard.
    html = message.locator("#message-html")
    assert html.inner_text().startswith("<p>Good morning u-30,</p>")
    assert html.locator("p").count() == 0 and html.locator("strong").count() == 0
    page.goto(f"/ui/deliveries/{planned}")
    assert page.locator("#message-none").inner_text().startswith("No copy kept")


def test_the_top_bar_holds_on_one_line_at_1280_pixels(page: Any) -> None:
    """Every section in the navigation and the signed-in name with its sign-out, each on one line
    (the search box gives way first)."""
    page.goto("/ui")
    links = page.locator("header.top nav a")
    tops = {round(links.nth(n).bounding_box()["y"]) for n in range(links.count())}
    assert len(tops) == 1, tops
    who = page.locator("header.top .who").bounding_box()
    sign_out = page.locator("header.top .who button").bounding_box()
    assert who["height"] < 2 * sign_out["height"], (who, sign_out)
