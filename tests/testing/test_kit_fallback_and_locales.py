"""The testing kit proves fallbacks and languages as a team writes such tests: "the SMS went out because
the email bounced", "Ana got her brief from the Portuguese templates", in simulated time."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from adapters import Message, PermanentError
from planner.testing import (
    PlannerService,
    SentMessages,
    SimClock,
    assert_locale_used,
    assert_sent_as_fallback,
)

ServiceFactory = Callable[..., PlannerService]
pytestmark = pytest.mark.planner_settings(backoff_tiers=[[0, 1]])


def refuse_email(message: Message) -> None:
    if message.channel == "email":
        raise PermanentError("550 5.1.1 no such user", invalid_address=True)


def test_the_sms_went_out_because_the_email_bounced(
    planner_service: PlannerService, planner_clock: SimClock, sent_messages: SentMessages
) -> None:
    planner_clock.start_at("2026-03-02T11:00Z")
    planner_service.add_recipient("ann", timezone="UTC")
    first = planner_service.notify(
        "ann", "reminder", "email", fallback={"channel": "sms", "on": ["bounced"], "within": "2h"}
    )
    planner_clock.advance(minutes=5)
    assert sent_messages.on_channel("email").one().delivery_id == first
    effects = planner_service.provider_report(first, "bounced")["effects"]
    assert any(effect.startswith("fallback_planned:") for effect in effects)
    planner_clock.advance(minutes=5)

    sms = assert_sent_as_fallback(planner_service, "ann", kind="reminder", channel="sms", because="bounced")
    assert sms.to == planner_service.recipient_line("ann")["phone"]
    [record] = [d for d in planner_service.deliveries("ann") if d.channel == "sms"]
    assert (record.fallback_for, record.fallback_because, record.status) == (first, "bounced", "sent")
    assert "[fallback for #" in str(record)


def test_a_subscriptions_email_refused_falls_back_and_the_assertion_says_why_not_otherwise(
    planner_service: PlannerService, planner_clock: SimClock
) -> None:
    planner_clock.start_at("2026-03-02T00:00Z")
    planner_service.add_recipient("ann", timezone="UTC")
    planner_service.add_recipient("bob", timezone="UTC")
    for person in ("ann", "bob"):
        rule = {"channel": "sms", "on": ["invalid_address"]} if person == "ann" else None
        planner_service.subscribe(person, "daily_brief", at="12:00", fallback=rule)
    planner_service.capture.fail_with = refuse_email
    planner_clock.advance(hours=13)
    message = assert_sent_as_fallback(
        planner_service, "ann", kind="daily_brief", channel="sms", because="invalid_address"
    )
    assert message.planned_local_date is not None and message.planned_local_date.isoformat() == "2026-03-02"
    with pytest.raises(
        AssertionError, match=r"not sent as a fallback: expected one fallback on sms, found 0"
    ):
        assert_sent_as_fallback(planner_service, "bob", kind="daily_brief", channel="sms")
    with pytest.raises(AssertionError, match=r"was called because invalid_address, expected bounced"):
        assert_sent_as_fallback(planner_service, "ann", kind="daily_brief", channel="sms", because="bounced")


def test_the_locale_used_is_what_the_kit_asserts(
    planner_service_factory: ServiceFactory, planner_clock: SimClock, tmp_path: Path
) -> None:
    portuguese = tmp_path / "templates" / "daily_brief" / "pt"
    portuguese.mkdir(parents=True)
    (portuguese / "email_subject.txt").write_text("Seu resumo")
    (portuguese / "email.txt").write_text("Resumo de {{ scheduled_at | localdate('long') }}")
    service = planner_service_factory(settings={"templates_dir": str(tmp_path / "templates")})
    planner_clock.start_at("2026-03-02T00:00Z")
    service.add_recipient("ana", timezone="America/Sao_Paulo", locale="pt-BR")
    service.add_recipient("ann", timezone="UTC")
    for person in ("ana", "ann"):
        service.subscribe(person, "daily_brief", at="08:00")
    planner_clock.advance(hours=12)

    [ana] = assert_locale_used(service.sent, "ana", "pt", kind="daily_brief")
    assert ana.text == "Resumo de 2 de março de 2026"
    assert_locale_used(service.sent, "ann", "en")
    assert [m.recipient for m in service.sent.in_locale("PT")] == ["ana"]
    assert {d.recipient: d.template_locale for d in service.deliveries()} == {"ana": "pt", "ann": "en"}
    with pytest.raises(AssertionError, match=r"expected every message in 'pt'; 1 of 1 were not"):
        assert_locale_used(service.sent, "ann", "pt")
    service.update_recipient("ann", locale="pt-PT")
    planner_clock.advance(days=1)
    assert [m.locale for m in service.sent.for_recipient("ann")] == ["en", "pt"]
