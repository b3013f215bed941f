"""Outgoing webhooks' pure rules: the retry schedule, endpoint URLs, event types, which status is
which event, the secret's form."""

from __future__ import annotations

import base64
import ipaddress
import random
from datetime import timedelta

import pytest

from planner.core.webhook_events import EVENT_TYPES, make_event, outcome_event_type, provider_event_type
from planner.core.webhook_policy import (
    MAX_ATTEMPTS,
    endpoint_url,
    event_types,
    is_public,
    new_secret,
    retry_wait,
    schedule_bounds,
)
from planner.errors import InvalidInput


def test_the_schedule_waits_longer_each_time_never_less_than_its_base_and_spans_over_a_day() -> None:
    rng = random.Random(7)
    bases = [15, 60, 240, 960, 3840, 15360, 28800, 28800, 28800]
    for attempt, base in enumerate(bases, start=1):
        for _ in range(50):
            wait = retry_wait(attempt, rng)
            assert wait is not None and base <= wait.total_seconds() <= base * 1.2
    assert retry_wait(MAX_ATTEMPTS, rng) is None
    shortest, longest = schedule_bounds()
    assert shortest == timedelta(seconds=sum(bases)) and timedelta(hours=29) < shortest
    assert longest == shortest * 1.2


@pytest.mark.parametrize(
    "url",
    ["https://hooks.example.com/in", "https://hooks.example.com:8443/a?b=c", "https://8.8.8.8/x"],
)
def test_public_https_urls_are_accepted(url: str) -> None:
    assert endpoint_url(url, allow_private=False).url == url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://hooks.example.com/in", "needs PLANNER_WEBHOOKS_ALLOW_PRIVATE"),
        ("ftp://hooks.example.com/in", "an https:// URL"),
        ("javascript:alert(1)", "an https:// URL"),
        ("https:///path-only", "an https:// URL"),
        ("https://user:secret@hooks.example.com/", "no credentials"),
        ("https://hooks.example.com/#frag", "without a #fragment"),
        ("https://hooks.example.com/ in", "without spaces"),
        ("https://hooks.example.com:99999/", "an https:// URL"),
        ("https://127.0.0.1/", "a public address"),
        ("https://[::ffff:10.0.0.1]/", "a public address"),
        ("https://100.64.0.1/", "a public address"),
        ("https://0.0.0.0/", "a public address"),
        (None, "at most 2000 characters"),
        ("https://x/" + "a" * 2000, "at most 2000 characters"),
    ],
)
def test_bad_urls_are_refused_naming_what_was_expected(url: object, expected: str) -> None:
    with pytest.raises(InvalidInput, match="url") as raised:
        endpoint_url(url, allow_private=False)
    assert expected in raised.value.expected


def test_private_addresses_and_http_pass_when_allowed() -> None:
    assert endpoint_url("http://127.0.0.1:8080/x", allow_private=True).port == 8080
    assert not is_public(ipaddress.ip_address("169.254.169.254"))
    assert not is_public(ipaddress.ip_address("fe80::1"))
    assert not is_public(ipaddress.ip_address("224.0.0.1"))
    assert is_public(ipaddress.ip_address("2606:4700::1111"))


def test_event_types_are_known_unique_and_in_the_documented_order() -> None:
    assert event_types(["recipient.complained", "delivery.sent", "delivery.sent"]) == [
        "delivery.sent",
        "recipient.complained",
    ]
    assert event_types("delivery.dead, delivery.failed") == ["delivery.failed", "delivery.dead"]
    for bad in ([], "", ["delivery.sending"], [1], None):
        with pytest.raises(InvalidInput, match="event_types"):
            event_types(bad)


def test_which_status_is_which_event() -> None:
    assert outcome_event_type("sent", None) == "delivery.sent"
    assert outcome_event_type("dead", "permanent_failure") == "delivery.failed"
    assert outcome_event_type("dead", "attempts_exhausted") == "delivery.dead"
    assert outcome_event_type("skipped", "snoozed") == "delivery.skipped"
    assert outcome_event_type("suppressed", "opted_out") == "delivery.suppressed"
    assert outcome_event_type("cancelled", None) is None and outcome_event_type("missed", None) is None
    reported = ("delivered", "undelivered", "failed", "bounced", "deferred")
    assert [provider_event_type(s) for s in reported] == [
        "delivery.delivered", "delivery.undelivered", "delivery.undelivered", "delivery.undelivered", None,
    ]  # fmt: skip
    assert len(EVENT_TYPES) == 12


def test_a_secret_is_whsec_and_24_random_bytes() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 24
    assert new_secret() != secret


def test_an_event_is_compact_json_with_its_type_version_and_utc_timestamp() -> None:
    from datetime import UTC, datetime, timezone

    at = datetime(2026, 3, 2, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    event = make_event("recipient.complained", at, {"recipient_id": "ann", "channel": "email"})
    assert event.payload == (
        '{"type":"recipient.complained","version":1,"timestamp":"2026-03-02T12:00:00Z",'
        '"data":{"recipient_id":"ann","channel":"email"}}'
    )
    assert event.msg_id.startswith("msg_") and event.at == at.astimezone(UTC)
