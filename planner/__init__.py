"""Notification planner: decides when each recipient gets each scheduled notification, in their own
local time, and delivers it exactly once through adapter plugins.

What is listed in ``__all__`` is the public API; every other module is private and may change.
Names load on first use, so ``import planner`` (and the ``planner`` command) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from planner._lazy import lazy_getattr

if TYPE_CHECKING:
    from planner.app import App, build_deliverer, build_runner
    from planner.commands.importer import ImportFailed, ImportReport, import_lines
    from planner.commands.notify import NotifyResult, notify
    from planner.core.cadence import Cadence
    from planner.core.checks import Audience, Decision, Verdict
    from planner.core.localtime import get_zone, resolve, resolve_detailed, tzdata_version
    from planner.core.policy import PlanningPolicy
    from planner.core.quiet_hours import QuietHours
    from planner.core.status import Channel, DeliveryStatus
    from planner.errors import (
        ConfigurationError,
        InvalidInput,
        NaiveDatetimeError,
        NotFound,
        PlannerError,
        UnknownTimezoneError,
    )
    from planner.readmodels.explain import explain
    from planner.run.runner import RunReport
    from planner.settings import Settings

_LAZY = {
    "App": "planner.app",
    "build_deliverer": "planner.app",
    "build_runner": "planner.app",
    "Settings": "planner.settings",
    "Cadence": "planner.core.cadence",
    "Audience": "planner.core.checks",
    "Decision": "planner.core.checks",
    "Verdict": "planner.core.checks",
    "get_zone": "planner.core.localtime",
    "resolve": "planner.core.localtime",
    "resolve_detailed": "planner.core.localtime",
    "tzdata_version": "planner.core.localtime",
    "PlanningPolicy": "planner.core.policy",
    "QuietHours": "planner.core.quiet_hours",
    "Channel": "planner.core.status",
    "DeliveryStatus": "planner.core.status",
    "ConfigurationError": "planner.errors",
    "InvalidInput": "planner.errors",
    "NaiveDatetimeError": "planner.errors",
    "NotFound": "planner.errors",
    "PlannerError": "planner.errors",
    "UnknownTimezoneError": "planner.errors",
    "explain": "planner.readmodels.explain",
    "ImportFailed": "planner.commands.importer",
    "ImportReport": "planner.commands.importer",
    "import_lines": "planner.commands.importer",
    "NotifyResult": "planner.commands.notify",
    "notify": "planner.commands.notify",
    "RunReport": "planner.run.runner",
}

__all__ = [
    "App",
    "Audience",
    "Cadence",
    "Channel",
    "ConfigurationError",
    "Decision",
    "DeliveryStatus",
    "ImportFailed",
    "ImportReport",
    "InvalidInput",
    "NaiveDatetimeError",
    "NotFound",
    "NotifyResult",
    "PlannerError",
    "PlanningPolicy",
    "QuietHours",
    "RunReport",
    "Settings",
    "UnknownTimezoneError",
    "Verdict",
    "build_deliverer",
    "build_runner",
    "explain",
    "get_zone",
    "import_lines",
    "notify",
    "resolve",
    "resolve_detailed",
    "tzdata_version",
]


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
