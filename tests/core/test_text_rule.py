"""The one text rule: no NUL, no lone surrogate, in any string a door takes, at any depth.

PostgreSQL's text and jsonb refuse NUL (SQLite keeps it); a lone surrogate has no UTF-8 form, so no
database, log or JSON answer can hold it. Every door refuses both the same way, before it writes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from planner.core import feedback, validation
from planner.core.adhoc import AdhocRequest
from planner.core.import_records import LineError, parse_lines
from planner.core.template_data import check_template_data
from planner.errors import InvalidInput

RULE = validation.TEXT_EXPECTED
NUL = "a\x00b"
SURROGATE = "a\udfffb"
HIGH_SURROGATE = "\ud83d"  # half of an emoji's UTF-16 pair, alone


@pytest.mark.parametrize("bad", [NUL, SURROGATE, HIGH_SURROGATE, "\udc80"])
def test_nul_and_lone_surrogates_are_refused_wherever_they_nest(bad: str) -> None:
    for value, field in (
        (bad, "data"),
        ({"a": bad}, "data.a"),
        ({"a": [1, {"b": bad}]}, "data.a[1].b"),
        ([["x", bad]], "data[0][1]"),
    ):
        with pytest.raises(InvalidInput) as refused:
            validation.text(value, "data")
        assert refused.value.field == field
        assert refused.value.expected == RULE
        # The message shows the value escaped: it can itself be written anywhere.
        str(refused.value).encode("utf-8")


def test_a_bad_key_is_refused_too() -> None:
    with pytest.raises(InvalidInput) as refused:
        validation.text({"ok": {SURROGATE: 1}}, "data")
    assert refused.value.field == "data.ok"
    assert refused.value.value == SURROGATE
    assert "keys of" in refused.value.expected


def test_other_text_passes_as_it_is() -> None:
    fine = {"emoji": "\U0001f600", "cjk": "漢字", "controls": "tab\tnewline\n", "rtl": "\u202e", "n": 1}
    assert validation.text(fine, "data") is fine
    # A surrogate pair written as two JSON escapes is one character, not a lone surrogate.
    assert validation.text(json.loads('"\\ud83d\\ude00"'), "data") == "\U0001f600"
    assert validation.text(None, "data") is None


def test_deep_values_are_walked_without_recursion() -> None:
    deep: Any = NUL
    for _ in range(50_000):
        deep = [deep]
    with pytest.raises(InvalidInput):
        validation.text(deep, "data")


def test_template_data_and_digest_event_data_follow_the_rule() -> None:
    with pytest.raises(InvalidInput, match=r"^data\.when\.day: 'a\\x00b' is invalid"):
        check_template_data({"when": {"day": NUL}})
    with pytest.raises(InvalidInput, match=r"^event\.data: 'a\\udfffb' is invalid"):
        check_template_data({SURROGATE: "x"}, "event.data", max_bytes=100)


def _line_errors(line: dict[str, Any]) -> list[LineError]:
    # json.dumps writes the characters as \u escapes, as a client's JSON encoder would.
    return [e for e in parse_lines([json.dumps(line)]) if isinstance(e, LineError)]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"attributes": {"plan": NUL}}, "attributes.plan"),
        ({"attributes": {"plan": SURROGATE}}, "attributes.plan"),
        ({"timezone": "Europe/Paris\x00"}, "timezone"),
        ({"subscriptions": [{"kind": "daily_brief", "channel": "email", "at": "08:00\udfff"}]},
         "subscriptions[0].at"),
        ({"subscriptions": [{"kind": "daily_brief", "channel": "email", "rrule": "FREQ=DAILY\x00"}]},
         "subscriptions[0].rrule"),
    ],
)  # fmt: skip
def test_an_import_line_is_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    line = {"type": "recipient", "id": "u-1", "timezone": "UTC", "email": "a@example.com"} | change
    [error] = _line_errors(line)
    assert (error.field, error.expected) == (field, RULE)


def test_an_engagement_line_is_refused_naming_the_field() -> None:
    line = {"type": "engagement", "recipient_id": "u-1", "event": "opened", "at": "2026-03-01T10:00:00Z\x00"}
    [error] = _line_errors(line)
    assert (error.field, error.expected) == ("at", RULE)


@pytest.mark.parametrize(("dedup_key", "data"), [(NUL, None), (SURROGATE, None), (None, {"x": SURROGATE})])
def test_an_adhoc_request_is_refused_before_it_is_decided(dedup_key: str | None, data: Any) -> None:
    with pytest.raises(InvalidInput) as refused:
        AdhocRequest.parse(
            "u-1", "reminder", "email", dedup_key=dedup_key, data=data, priority=None, at=None,
            default_queue="default",
        )  # fmt: skip
    assert refused.value.expected == RULE


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"MessageSid": "SM1\x00", "MessageStatus": "delivered"}, "MessageSid"),
        ({"MessageSid": "SM1", "MessageStatus": "failed", "ErrorMessage": NUL}, "ErrorMessage"),
    ],
)
def test_twilio_status_callbacks_follow_the_rule(form: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        feedback.twilio_status(form)
    assert refused.value.field == field


def test_twilio_inbound_messages_follow_the_rule() -> None:
    with pytest.raises(InvalidInput) as refused:
        feedback.twilio_inbound({"MessageSid": "SM1", "From": "+1212555\x000100", "Body": "STOP"})
    assert refused.value.field == "From"


def test_mailgun_events_follow_the_rule() -> None:
    event = {"event": "delivered", "id": "ev\x00", "message": {"headers": {"message-id": "m@x"}}}
    with pytest.raises(InvalidInput) as refused:
        feedback.mailgun_event(event, "token")
    assert refused.value.field == "event-data.id"


@pytest.mark.parametrize("field", ["event_id", "message_id", "code", "detail", "token"])
def test_a_delivery_report_cannot_be_made_of_bad_text_whatever_built_it(field: str) -> None:
    fields = {"event_id": "e1", "message_id": "m1", "code": "550", "detail": "gone", "token": "t"}
    with pytest.raises(InvalidInput) as refused:
        feedback.DeliveryReport(provider="email", status="bounced", **(fields | {field: NUL}))
    assert refused.value.field == field
