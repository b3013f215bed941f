"""Testing kit: prove notification schedules in frozen time, without servers to run.

Registered as the pytest plugin ``planner.testing``, it provides the fixtures ``planner_service``
(a throw-away service: temporary SQLite file, embedded Redis, capture adapter), ``planner_clock``
(simulated time that runs the hourly planner and the worker as it advances), ``sent_messages``
(what was sent, in each recipient's local time), and ``planner_settings``, ``planner_start``,
``planner_service_factory`` to configure them. See docs/testing.md.

Importing this package is cheap and starts nothing: pytest imports it in every session. The
classes and assertions below load on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from planner._lazy import lazy_getattr

try:
    import pytest  # noqa: F401
except ImportError:  # pragma: no cover - `planner demo` drives the engine without pytest installed
    pass
else:
    # pytest finds the fixtures and hooks as attributes of this module (``-p planner.testing``).
    from planner.testing.plugin import (
        planner_clock,
        planner_service,
        planner_service_factory,
        planner_settings,
        planner_start,
        pytest_configure,
        sent_messages,
    )

if TYPE_CHECKING:
    from planner.testing.assertions import (
        assert_digests_sent,
        assert_locale_used,
        assert_next_send_at,
        assert_sent_as_fallback,
        assert_sent_on_local_dates,
        assert_sent_once_daily_at,
    )
    from planner.testing.clock import DEFAULT_START, SimClock
    from planner.testing.errors import JobFailed, KitError
    from planner.testing.recipes import learned_time
    from planner.testing.records import DeliveryRecord, NextSend
    from planner.testing.sent import RecordingCaptureAdapter, SentMessage, SentMessages
    from planner.testing.service import PlannerService
    from planner.testing.settings import kit_settings

_LAZY = {
    "assert_digests_sent": "planner.testing.assertions",
    "assert_locale_used": "planner.testing.assertions",
    "assert_sent_as_fallback": "planner.testing.assertions",
    "assert_next_send_at": "planner.testing.assertions",
    "assert_sent_once_daily_at": "planner.testing.assertions",
    "assert_sent_on_local_dates": "planner.testing.assertions",
    "DEFAULT_START": "planner.testing.clock",
    "SimClock": "planner.testing.clock",
    "RecordingCaptureAdapter": "planner.testing.sent",
    "SentMessage": "planner.testing.sent",
    "SentMessages": "planner.testing.sent",
    "DeliveryRecord": "planner.testing.records",
    "NextSend": "planner.testing.records",
    "learned_time": "planner.testing.recipes",
    "JobFailed": "planner.testing.errors",
    "KitError": "planner.testing.errors",
    "PlannerService": "planner.testing.service",
    "kit_settings": "planner.testing.settings",
}

__all__ = [
    "DEFAULT_START",
    "DeliveryRecord",
    "JobFailed",
    "KitError",
    "NextSend",
    "PlannerService",
    "RecordingCaptureAdapter",
    "SentMessage",
    "SentMessages",
    "SimClock",
    "assert_digests_sent",
    "assert_locale_used",
    "assert_next_send_at",
    "assert_sent_as_fallback",
    "assert_sent_on_local_dates",
    "assert_sent_once_daily_at",
    "kit_settings",
    "learned_time",
    "planner_clock",
    "planner_service",
    "planner_service_factory",
    "planner_settings",
    "planner_start",
    "pytest_configure",
    "sent_messages",
]


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
