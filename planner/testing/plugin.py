"""The pytest fixtures of the testing kit (registered as the ``planner.testing`` plugin).

This module is imported by every pytest session that has the planner installed, so it imports
nothing heavy: the service, its servers and freezegun are loaded when a fixture is first used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from planner.testing.clock import SimClock
    from planner.testing.sent import SentMessages
    from planner.testing.service import PlannerService

DEFAULT_START_TEXT = "2026-01-05T00:00:00Z"

ServiceFactory = Callable[..., "PlannerService"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "planner_settings(**overrides): planner settings for this test's kit services "
        "(e.g. cap_sms='1/day', critical_kinds=['password_reset'])",
    )


def _marker_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    # iter_markers yields the closest first; apply the farthest (module, class) first.
    for marker in reversed(list(request.node.iter_markers("planner_settings"))):
        if marker.args:
            raise pytest.UsageError("planner_settings takes keyword arguments only, e.g. cap_sms='1/day'")
        merged.update(marker.kwargs)
    return merged


@pytest.fixture
def planner_start() -> datetime | str:
    """Where the simulated clock starts (override this fixture, or call ``planner_clock.start_at``)."""
    return DEFAULT_START_TEXT


@pytest.fixture
def planner_settings() -> Mapping[str, Any]:
    """Planner setting overrides for every kit service of a test (override this fixture to change them)."""
    return {}


@pytest.fixture
def planner_clock(planner_start: datetime | str) -> Iterator[SimClock]:
    """The simulated clock, frozen by freezegun for the whole test."""
    from planner.testing.clock import SimClock

    with SimClock(planner_start) as clock:
        yield clock


@pytest.fixture
def planner_service_factory(
    planner_clock: SimClock,
    planner_settings: Mapping[str, Any],
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServiceFactory]:
    """Make more kit services on the same clock: ``planner_service_factory(settings={...})``."""
    from planner.testing.service import PlannerService

    base = {**planner_settings, **_marker_overrides(request)}
    with ExitStack() as stack:

        def make(settings: Mapping[str, Any] | None = None) -> PlannerService:
            service = PlannerService(
                planner_clock, tmp_path_factory.mktemp("planner"), {**base, **(settings or {})}
            )
            stack.callback(service.close)
            return service.start()

        yield make


@pytest.fixture
def planner_service(planner_service_factory: ServiceFactory) -> PlannerService:
    """A throw-away planner service on the test's simulated clock."""
    return planner_service_factory()


@pytest.fixture
def sent_messages(planner_service: PlannerService) -> SentMessages:
    """A live view of what ``planner_service`` sent (filter it with for_recipient, of_kind, ...)."""
    return planner_service.sent
