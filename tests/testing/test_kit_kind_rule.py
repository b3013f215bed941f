"""The testing kit and the service share one rule for kinds: a kind without templates is refused by
the kit's helpers with the words the API's 422 uses, and a kind with the team's own templates
(``templates_dir``) is sent with them."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.commands.importer import ImportFailed
from planner.errors import InvalidInput
from planner.testing import PlannerService, SimClock

TEMPLATES = Path(__file__).parent / "kit_templates"


def test_a_kind_without_templates_is_refused_as_the_api_refuses_it(planner_service: PlannerService) -> None:
    planner_service.add_recipient("ann", timezone="UTC")
    with pytest.raises(ImportFailed) as refused:
        planner_service.subscribe("ann", "standup", channel="sms", at="09:00")
    [line] = refused.value.errors
    assert line.field == "subscriptions[0].kind"
    assert line.expected is not None and line.expected.startswith("a kind with sms templates: ")
    assert "daily_brief" in line.expected and "PLANNER_TEMPLATES_DIR (unset)" in line.expected
    with pytest.raises(InvalidInput) as event:
        planner_service.record_event("ann", "standup", {"text": "hi"})
    assert event.value.field == "kind" and "PLANNER_TEMPLATES_DIR" in event.value.expected


@pytest.mark.planner_settings(templates_dir=str(TEMPLATES))
def test_a_kind_with_the_teams_own_templates_is_sent_with_them(
    planner_service: PlannerService, planner_clock: SimClock
) -> None:
    planner_clock.start_at("2026-03-02T00:00Z")
    planner_service.add_recipient("ann", timezone="UTC")
    planner_service.subscribe("ann", "standup", channel="sms", at="09:00")
    planner_clock.advance(hours=10)
    [sent] = planner_service.sent_list
    assert sent.text == "Stand-up at 09:00, ann"
