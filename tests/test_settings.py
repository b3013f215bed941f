"""Settings into the planning policy: caps, per-kind overrides, and errors that name the setting."""

from __future__ import annotations

from datetime import timedelta

import pytest

from planner.core.policy import BackoffTier, Cap, PlanningPolicy
from planner.settings import Settings


def test_policy_from_settings_parses_caps_and_per_kind_overrides() -> None:
    policy = PlanningPolicy.from_settings(
        Settings(
            database_url="sqlite://",
            cap_sms="5 per 2 hours",
            caps_by_kind={"reminder": {"sms": "1/day"}},
            backoff_tiers_by_kind={"digest": [[0, 7]]},  # type: ignore[list-item]
            critical_kinds=["password_reset"],
        )
    )
    assert policy.cap_for("daily_brief", "sms") == Cap(5, timedelta(hours=2), "5 per 2 hours")
    assert policy.cap_for("reminder", "sms").amount == 1
    assert policy.tiers_for("digest") == (BackoffTier(0, 7),)
    assert policy.is_critical("password_reset") and not policy.is_critical("daily_brief")
    assert policy.quiet_defaults["sms"].start.hour == 21 and policy.quiet_defaults["email"].is_empty


def test_bad_limit_notation_is_rejected_with_the_setting_named() -> None:
    with pytest.raises(ValueError, match="cap_sms"):
        Settings(database_url="sqlite://", cap_sms="three a day")


def test_kind_names_from_the_environment_and_their_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from planner.core.wording import kind_name
    from planner.settings import settings_problems

    monkeypatch.setenv("PLANNER_KIND_NAMES", '{"weekly_digest": " the weekly digest "}')
    names = Settings(database_url="sqlite://").kind_names
    assert names == {"weekly_digest": "the weekly digest"}
    assert kind_name("weekly_digest", names) == "the weekly digest"
    assert kind_name("daily_brief", names) == "daily brief messages"  # no name set: the kind in words
    for value, complaint in (
        ('{"Weekly Digest": "x"}', "is not a kind"),
        ('{"weekly_digest": ""}', "expected 1 to 100 characters"),
        ("weekly_digest=x", "not valid JSON"),
    ):
        monkeypatch.setenv("PLANNER_KIND_NAMES", value)
        with pytest.raises(ValidationError) as caught:
            Settings(database_url="sqlite://")
        problems = settings_problems(caught.value)
        assert problems.startswith("PLANNER_KIND_NAMES") and complaint in problems, problems


def test_previous_signing_secrets_are_a_comma_list_or_json_and_never_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PLANNER_PREVIOUS_SIGNING_SECRETS", "first-old-secret, second-old-secret")
    settings = Settings(database_url="sqlite://")
    assert [s.get_secret_value() for s in settings.previous_signing_secrets] == [
        "first-old-secret",
        "second-old-secret",
    ]
    assert "first-old-secret" not in repr(settings)
    monkeypatch.setenv("PLANNER_PREVIOUS_SIGNING_SECRETS", '["a secret, with a comma"]')
    [only] = Settings(database_url="sqlite://").previous_signing_secrets
    assert only.get_secret_value() == "a secret, with a comma"
    monkeypatch.setenv("PLANNER_UI_IDLE_TIMEOUT", "45m")
    monkeypatch.setenv("PLANNER_HTTP_HEADER_TIMEOUT", "5s")
    settings = Settings(database_url="sqlite://")
    assert settings.ui_idle_timeout == timedelta(minutes=45)
    assert settings.http_header_timeout == timedelta(seconds=5)
