"""The planning rules' parameters, derived once from the settings (validated, parsed, typed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from planner.core.limit_notation import parse_limit
from planner.core.quiet_hours import QuietHours
from planner.errors import ConfigurationError

DEFAULT_BACKOFF_TIERS: list[tuple[int, int]] = [(0, 1), (3, 2), (7, 3), (14, 7), (30, 14)]
"""(inactive for at least N days, send at most every M days)."""


class PolicySettings(Protocol):
    """The settings the policy is derived from (``planner.settings.Settings`` has them all)."""

    @property
    def max_lateness(self) -> timedelta: ...
    @property
    def max_lateness_by_kind(self) -> Mapping[str, timedelta]: ...
    @property
    def quiet_hours_sms(self) -> str: ...
    @property
    def quiet_hours_email(self) -> str: ...
    @property
    def cap_email(self) -> str: ...
    @property
    def cap_sms(self) -> str: ...
    @property
    def caps_by_kind(self) -> Mapping[str, Mapping[str, str]]: ...
    @property
    def backoff_tiers(self) -> Sequence[tuple[int, int]]: ...
    @property
    def backoff_tiers_by_kind(self) -> Mapping[str, Sequence[tuple[int, int]]]: ...
    @property
    def critical_kinds(self) -> Sequence[str]: ...
    @property
    def kind_queues(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class Cap:
    """At most ``amount`` deliveries in any rolling ``window``."""

    amount: int
    window: timedelta
    text: str

    @classmethod
    def parse(cls, text: str, field_name: str = "cap") -> Cap:
        try:
            amount, seconds = parse_limit(text)
        except ValueError as exc:
            raise ConfigurationError(
                f"{field_name}: {text!r} is not in the limits notation, e.g. '10/day'"
            ) from exc
        return cls(amount=amount, window=timedelta(seconds=seconds), text=text)


@dataclass(frozen=True)
class BackoffTier:
    min_inactive_days: int
    interval_days: int
    #: What the timeline records for the tier (every planned occurrence names one): built once.
    label: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "label", f"inactive>={self.min_inactive_days}d:every {self.interval_days}d")


def _tiers(raw: Sequence[tuple[int, int]], name: str) -> tuple[BackoffTier, ...]:
    tiers = tuple(sorted((BackoffTier(int(a), int(b)) for a, b in raw), key=lambda t: t.min_inactive_days))
    if not tiers or tiers[0].min_inactive_days != 0 or any(t.interval_days < 1 for t in tiers):
        raise ConfigurationError(
            f"{name}: {raw!r} is invalid; expected tiers [[min_inactive_days, interval_days], ...] "
            "starting at 0 with intervals of at least 1 day"
        )
    return tiers


def _quiet(text: str, name: str) -> QuietHours:
    if not text.strip():
        return QuietHours.parse("00:00", "00:00", name)
    start, sep, end = text.partition("-")
    if not sep:
        raise ConfigurationError(f"{name}: {text!r} is invalid; expected 'HH:MM-HH:MM' such as '21:00-08:00'")
    return QuietHours.parse(start.strip(), end.strip(), name)


def _check_kinds(settings: PolicySettings) -> None:
    from planner.core.validation import kind

    named = {
        "PLANNER_CRITICAL_KINDS": settings.critical_kinds,
        "PLANNER_KIND_QUEUES": settings.kind_queues,
        "PLANNER_MAX_LATENESS_BY_KIND": settings.max_lateness_by_kind,
        "PLANNER_CAPS_BY_KIND": settings.caps_by_kind,
        "PLANNER_BACKOFF_TIERS_BY_KIND": settings.backoff_tiers_by_kind,
    }
    for name, kinds in named.items():
        for value in kinds:
            kind(value, name)


@dataclass(frozen=True)
class PlanningPolicy:
    max_lateness: timedelta = timedelta(hours=4)
    max_lateness_by_kind: Mapping[str, timedelta] = field(default_factory=dict)
    quiet_defaults: Mapping[str, QuietHours] = field(default_factory=dict)
    caps: Mapping[str, Cap] = field(default_factory=dict)
    caps_by_kind: Mapping[tuple[str, str], Cap] = field(default_factory=dict)
    tiers: tuple[BackoffTier, ...] = tuple(BackoffTier(a, b) for a, b in DEFAULT_BACKOFF_TIERS)
    tiers_by_kind: Mapping[str, tuple[BackoffTier, ...]] = field(default_factory=dict)
    critical_kinds: frozenset[str] = frozenset()
    kind_queues: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: PolicySettings) -> PlanningPolicy:
        """The policy; a bad setting raises an error naming its ``PLANNER_*`` variable."""
        _check_kinds(settings)
        return cls(
            max_lateness=settings.max_lateness,
            max_lateness_by_kind=dict(settings.max_lateness_by_kind),
            quiet_defaults={
                "sms": _quiet(settings.quiet_hours_sms, "PLANNER_QUIET_HOURS_SMS"),
                "email": _quiet(settings.quiet_hours_email, "PLANNER_QUIET_HOURS_EMAIL"),
            },
            caps={
                "email": Cap.parse(settings.cap_email, "PLANNER_CAP_EMAIL"),
                "sms": Cap.parse(settings.cap_sms, "PLANNER_CAP_SMS"),
            },
            caps_by_kind={
                (kind, channel): Cap.parse(text, f"PLANNER_CAPS_BY_KIND[{kind}][{channel}]")
                for kind, per_channel in settings.caps_by_kind.items()
                for channel, text in per_channel.items()
            },
            tiers=_tiers(settings.backoff_tiers, "PLANNER_BACKOFF_TIERS"),
            tiers_by_kind={
                kind: _tiers(raw, f"PLANNER_BACKOFF_TIERS_BY_KIND[{kind}]")
                for kind, raw in settings.backoff_tiers_by_kind.items()
            },
            critical_kinds=frozenset(settings.critical_kinds),
            kind_queues=dict(settings.kind_queues),
        )

    def lateness_for(self, kind: str) -> timedelta:
        return self.max_lateness_by_kind.get(kind, self.max_lateness)

    def cap_for(self, kind: str, channel: str) -> Cap:
        return self.caps_by_kind.get((kind, channel)) or self.caps[channel]

    def tiers_for(self, kind: str) -> tuple[BackoffTier, ...]:
        return self.tiers_by_kind.get(kind, self.tiers)

    def queue_for(self, kind: str) -> str:
        return self.kind_queues.get(kind, "default")

    def is_critical(self, kind: str) -> bool:
        return kind in self.critical_kinds

    @property
    def longest_cap_window(self) -> timedelta:
        windows = [c.window for c in self.caps.values()] + [c.window for c in self.caps_by_kind.values()]
        return max(windows, default=timedelta(days=1))
