"""The testing kit's helpers follow the service's text rule: what the kit accepts, the service would
store on either database (a test written with the kit must not pass on input the API refuses)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from planner.commands.importer import ImportFailed
from planner.core.validation import TEXT_EXPECTED
from planner.errors import InvalidInput
from planner.testing import PlannerService

NUL = "x\x00y"
SURROGATE = "x\udfffy"


def refused(action: Callable[[], object]) -> str:
    """The field the kit's refusal names, with the rule's words."""
    with pytest.raises((ImportFailed, InvalidInput)) as caught:
        action()
    error = caught.value
    if isinstance(error, ImportFailed):
        [line] = error.errors
        assert line.expected == TEXT_EXPECTED
        return line.field
    assert isinstance(error, InvalidInput) and error.expected == TEXT_EXPECTED
    return error.field


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
def test_kit_helpers_refuse_what_the_service_cannot_store(planner_service: PlannerService, bad: str) -> None:
    kit = planner_service
    assert refused(lambda: kit.add_recipient("ann", timezone=f"UTC{bad}")) == "timezone"
    kit.add_recipient("ann", timezone="UTC")
    assert refused(lambda: kit.subscribe("ann", "daily_brief", at=f"08:00{bad}")) == "subscriptions[0].at"
    kit.subscribe("ann", "comments_digest", at="08:00", digest=True)
    assert refused(lambda: kit.record_event("ann", "comments_digest", {"title": bad})) == "data.title"
    assert refused(lambda: kit.record_event("ann", "comments_digest", key=bad)) == "idempotency_key"
    assert refused(lambda: kit.engage("ann", kind=f"daily_brief{bad}")) != ""
    # Nothing of it reached the service: the one event recorded below is the first.
    assert kit.record_event("ann", "comments_digest", {"title": "fine"}) == 1
