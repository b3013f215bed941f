"""The fallback rule, pure: its shape checked whole at the door, the conditions each failure meets,
when it is called (never once the first channel was delivered, never on stale news), its dedup key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from planner.core.fallback import (
    FallbackRule,
    call,
    conditions_of_outcome,
    conditions_of_report,
    fallback_key,
)
from planner.errors import InvalidInput

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def test_a_rule_is_read_with_its_defaults_and_written_back_the_same() -> None:
    rule = FallbackRule.parse({"channel": "sms"}, "fallback", "email")
    assert rule == FallbackRule("sms", ("bounced", "invalid_address", "refused", "dead"), timedelta(days=1))
    assert rule.as_json() == {
        "channel": "sms",
        "on": ["bounced", "invalid_address", "refused", "dead"],
        "within": "1d",
    }
    assert FallbackRule.stored(rule.as_json()) == rule
    given = {"channel": "email", "on": ["failed", "undelivered", "failed"], "within": "PT2H"}
    sms = FallbackRule.parse(given, "fallback", "sms")
    # Listed in the order of specificity, once each.
    assert sms == FallbackRule("email", ("undelivered", "failed"), timedelta(hours=2))


@pytest.mark.parametrize(
    ("value", "first", "field", "expected"),
    [
        ("sms", "email", "fallback", "an object such as"),
        ({"channel": "email"}, "email", "fallback.channel", "a channel other than the first one ('email')"),
        ({"channel": "sms", "on": ["bounced"]}, "sms", "fallback.channel", "a channel other than"),
        ({"channel": "fax"}, "email", "fallback.channel", "one of 'email', 'sms'"),
        ({}, "email", "fallback.channel", "one of 'email', 'sms'"),
        ({"channel": "sms", "on": []}, "email", "fallback.on", "a non-empty list of"),
        ({"channel": "sms", "on": "bounced"}, "email", "fallback.on", "a non-empty list of"),
        ({"channel": "sms", "on": ["bounced", "exploded"]}, "email", "fallback.on[1]", "'bounced'"),
        # An SMS does not bounce, an email is not "undelivered": each channel has its own conditions.
        ({"channel": "email", "on": ["bounced"]}, "sms", "fallback.on[0]", "'undelivered', 'failed'"),
        ({"channel": "sms", "on": ["undelivered"]}, "email", "fallback.on[0]", "what can befall email"),
        ({"channel": "sms", "within": "0s"}, "email", "fallback.within", "from 1m to 7d"),
        ({"channel": "sms", "within": "30s"}, "email", "fallback.within", "from 1m to 7d"),
        ({"channel": "sms", "within": "8d"}, "email", "fallback.within", "from 1m to 7d"),
        ({"channel": "sms", "within": "99999999999d"}, "email", "fallback.within", "from 1m to 7d"),
        ({"channel": "sms", "within": 7200}, "email", "fallback.within", "from 1m to 7d"),
        ({"channel": "sms", "within": "-2h"}, "email", "fallback.within", "from 1m to 7d"),
        ({"channel": "sms", "when": "later"}, "email", "fallback.when", "only the fields"),
    ],
)
def test_a_bad_rule_is_one_clear_error_naming_its_part(
    value: Any, first: str, field: str, expected: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        FallbackRule.parse(value, "fallback", first)
    assert refused.value.field == field
    assert expected in refused.value.expected
    assert "\n" not in str(refused.value)


def test_the_conditions_each_failure_meets() -> None:
    assert conditions_of_outcome(dead=True, refused=False, invalid_address=False) == {"dead"}
    assert conditions_of_outcome(dead=True, refused=True, invalid_address=True) == {
        "dead",
        "refused",
        "invalid_address",
    }
    assert conditions_of_report("bounced", dead_address=True) == {"bounced", "invalid_address"}
    assert conditions_of_report("undelivered", dead_address=False) == {"undelivered"}
    assert conditions_of_report("failed", dead_address=True) == {"failed", "invalid_address"}
    for harmless in ("delivered", "deferred", "complained"):
        assert conditions_of_report(harmless, dead_address=False) == frozenset()


def test_a_failure_calls_the_fallback_with_its_most_specific_listed_condition() -> None:
    rule = FallbackRule("sms", ("bounced", "invalid_address", "dead"), timedelta(hours=2))
    sent = NOW - timedelta(hours=1)
    bounce = conditions_of_report("bounced", dead_address=True)
    assert call(rule, bounce, reported=True, sent_at=sent, delivered=False, now=NOW).because == "bounced"
    refusal = conditions_of_outcome(dead=True, refused=True, invalid_address=True)
    assert call(rule, refusal, reported=False, sent_at=None, delivered=False, now=NOW).because == (
        "invalid_address"
    )
    only_dead = FallbackRule("sms", ("dead",))
    assert call(only_dead, refusal, reported=False, sent_at=None, delivered=False, now=NOW).because == "dead"
    # A condition the rule does not list calls nothing, and is not worth a word on the timeline.
    assert call(only_dead, bounce, reported=True, sent_at=sent, delivered=False, now=NOW) is None


def test_stale_news_and_a_delivered_first_message_call_nothing() -> None:
    rule = FallbackRule("email", ("undelivered", "failed"), timedelta(hours=2))
    failed = {"undelivered"}
    edge = NOW - timedelta(hours=2)
    just_in_time = call(rule, failed, reported=True, sent_at=edge, delivered=False, now=NOW)
    assert just_in_time is not None and just_in_time.because == "undelivered"
    late = call(
        rule, failed, reported=True, sent_at=NOW - timedelta(hours=2, seconds=1), delivered=False, now=NOW
    )
    assert late is not None and (late.because, late.not_planned) == (None, "outside_window")
    delivered = call(rule, failed, reported=True, sent_at=NOW, delivered=True, now=NOW)
    assert delivered is not None and (delivered.because, delivered.not_planned) == (None, "delivered")


def test_the_fallback_key_is_derived_from_the_first_and_always_fits() -> None:
    assert fallback_key("sub:12:2026-03-02") == "fallback:sub:12:2026-03-02"
    long_key = "k" * 255
    derived = fallback_key(long_key)
    assert len(derived) <= 255 and derived.startswith("fallback:sha256:")
    assert derived == fallback_key(long_key) != fallback_key("k" * 254 + "j")
