"""The recipient page tells the truth: every subscription's real schedule, opt-outs and snooze."""

from __future__ import annotations

from typing import Any


def _subscriptions(page: Any) -> dict[str, Any]:
    return {row.get_attribute("data-kind"): row for row in page.locator("#subscriptions tbody tr").all()}


def test_each_subscription_shows_its_real_schedule_snooze_and_opt_out(page: Any) -> None:
    page.goto("/ui/recipients/rita")
    subs = _subscriptions(page)

    reminder = subs["reminder"]
    assert reminder.locator(".schedule").inner_text().splitlines() == [
        "every Monday, Wednesday and Friday at 09:00, 13:00 and 17:30",
        "FREQ=WEEKLY;BYDAY=MO,WE,FR",
    ]
    assert reminder.locator(".snooze").inner_text() == "no"
    assert reminder.locator(".opted-out").inner_text() == "no"

    brief = subs["daily_brief"]
    last_friday = "on the last Friday of every month at 08:00"
    assert brief.locator(".schedule").inner_text().splitlines()[0] == last_friday
    assert brief.locator(".snooze").inner_text() == "2026-04-01"

    digest = subs["weekly_digest"]
    assert digest.locator(".schedule").inner_text() == (
        "every Monday at 07:30, from 2026-03-02, until 2026-12-28"
    )
    assert digest.locator(".digest").inner_text() == "yes: collects its events"
    assert digest.locator(".opted-out").inner_text() == "weekly_digest on email"
    assert "daily" not in page.locator("#subscriptions").inner_text().replace("daily_brief", "")

    preferences = page.locator("#preferences")
    assert preferences.locator(".opt-out[data-channel=email]").inner_text() == "of weekly_digest"
    assert preferences.locator(".opt-out[data-channel=sms]").inner_text() == "no"
    assert preferences.locator(".quiet[data-channel=sms]").inner_text() == "22:00–07:00 (own)"
    assert preferences.locator(".quiet[data-channel=email]").inner_text() == "none"

    # The next sends agree: every wall time of the rule, on its days only.
    monday = [
        row.locator(".local-time").inner_text()
        for row in page.locator("#upcoming tbody tr", has_text="2026-03-09 Mon").all()
        if "reminder" in row.inner_text()
    ]
    assert monday == [
        "2026-03-09 09:00 +01:00 CET",
        "2026-03-09 13:00 +01:00 CET",
        "2026-03-09 17:30 +01:00 CET",
    ]
    tuesday = page.locator("#upcoming tbody tr", has_text="2026-03-10 Tue")
    assert "reminder" not in " ".join(tuesday.all_inner_texts())
