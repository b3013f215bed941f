"""Quiet hours: local wall-clock windows in which a channel must not deliver.

A window is ``[start, end)`` in local wall time and may cross midnight (21:00–08:00). A send
that falls inside is deferred to the end of the window, never dropped. The end is a wall time
like any other and is resolved by the same policy as cadences (``planner.core.localtime``): an end
inside a DST gap is shifted forward by the gap, an end inside an overlap is its first
occurrence unless that has already passed.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo

from planner.core.localtime import (
    UTC,
    Resolution,
    TzLike,
    get_zone,
    hhmm,
    parse_wall_time,
    resolve_detailed,
    to_local,
)
from planner.errors import InvalidInput


@dataclass(frozen=True)
class QuietHours:
    """``[start, end)`` in local wall time; ``start == end`` means no quiet hours."""

    start: time
    end: time
    #: 'HH:MM-HH:MM' (what a deferral's timeline detail records); worked out once per window.
    ascii_text: str = field(init=False, repr=False, compare=False)
    _text: str = field(init=False, repr=False, compare=False)
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, time) or value.tzinfo is not None:
                raise InvalidInput(
                    f"quiet_hours.{name}", value, "a wall time without a UTC offset, e.g. 08:00"
                )
        # Frozen: set once here, as the dataclass itself does.
        object.__setattr__(self, "ascii_text", f"{hhmm(self.start)}-{hhmm(self.end)}")
        object.__setattr__(
            self, "_text", "none" if self.start == self.end else f"{hhmm(self.start)}–{hhmm(self.end)}"
        )
        object.__setattr__(self, "_hash", hash((self.start, self.end)))

    def __hash__(self) -> int:
        # Worked out once: the windows are cache keys of every learned occurrence's choice.
        return self._hash

    @classmethod
    def parse(cls, start: str, end: str, field: str = "quiet_hours") -> QuietHours:
        """Validate 'HH:MM' strings; errors name ``f"{field}.start"`` / ``f"{field}.end"``."""
        return cls(parse_wall_time(start, f"{field}.start"), parse_wall_time(end, f"{field}.end"))

    @classmethod
    def of_columns(cls, start: time | None, end: time | None) -> QuietHours | None:
        """A recipient's own window as stored (a start and an end column); None when unset."""
        return _stored_window(start, end)

    @property
    def is_empty(self) -> bool:
        return self.start == self.end

    def contains(self, wall: time) -> bool:
        """Whether the local wall time ``wall`` is inside the window."""
        wall = wall.replace(tzinfo=None, fold=0)
        if self.is_empty:
            return False
        if self.start < self.end:
            return self.start <= wall < self.end
        return wall >= self.start or wall < self.end

    def text(self) -> str:
        """'21:00–08:00', or 'none'."""
        return self._text


@functools.lru_cache(maxsize=4096)
def _stored_window(start: time | None, end: time | None) -> QuietHours | None:
    # Recipients share a handful of windows: one (immutable) QuietHours each.
    return QuietHours(start, end) if start is not None and end is not None else None


NO_QUIET_HOURS = QuietHours(time(0), time(0))

DEFAULT_QUIET_HOURS: Mapping[str, QuietHours] = MappingProxyType(
    {"sms": QuietHours(time(21), time(8)), "email": NO_QUIET_HOURS}
)


def effective_quiet_hours(
    channel: str, own: QuietHours | None, defaults: Mapping[str, QuietHours] = DEFAULT_QUIET_HOURS
) -> QuietHours:
    """The recipient's own window if set, else the channel default; a channel without one has none."""
    if own is not None:
        return own
    return defaults.get(channel, NO_QUIET_HOURS)


def in_quiet_hours(qh: QuietHours, tz: TzLike, instant: datetime) -> bool:
    """Whether the real local wall time of ``instant`` lies inside the window."""
    return qh.contains(to_local(instant, tz).time())


def quiet_window_end_detailed(qh: QuietHours, tz: TzLike, instant: datetime) -> Resolution:
    """Like ``quiet_window_end``, but says whether the end was shifted by a gap."""
    zone = get_zone(tz)
    local = to_local(instant, zone)
    day = local.date()
    if local.time().replace(fold=0) >= qh.end:
        day += timedelta(days=1)
    # Bounded: the tz database never skipped more than one date in a row.
    for _ in range(3):
        resolution = resolve_detailed(day, qh.end, zone)
        if resolution is not None:
            if resolution.instant > instant:
                return resolution
            second = _second_occurrence(resolution, zone)
            if second is not None and second.instant > instant:
                # ``instant`` is in the repeated hour, past the end's first occurrence: the
                # window closes when the wall clock reaches the end again, not a day later.
                return second
        day += timedelta(days=1)
    raise RuntimeError(f"quiet hours {qh.text()} in {zone.key} have no end after {instant.isoformat()}")


def _second_occurrence(resolution: Resolution, zone: ZoneInfo) -> Resolution | None:
    if resolution.adjustment != "overlap":
        return None
    instant = resolution.local.replace(fold=1).astimezone(UTC)
    return Resolution(instant, instant.astimezone(zone), "overlap", timedelta(0))


def quiet_window_end(qh: QuietHours, tz: TzLike, instant: datetime) -> datetime:
    """The UTC instant at which the window containing ``instant`` ends; always after ``instant``.

    That is the local wall time ``qh.end`` on the instant's local date if the local time is still
    before it, else on the next local date (or the one after, if that date does not exist),
    resolved by the ``planner.core.localtime`` policy.
    """
    return quiet_window_end_detailed(qh, tz, instant).instant


@dataclass(frozen=True)
class Deferral:
    """``instant`` is when to send; ``original`` is when the cadence wanted to."""

    instant: datetime
    deferred: bool
    original: datetime


def apply_quiet_hours(qh: QuietHours, tz: TzLike, instant: datetime) -> Deferral:
    """Leave ``instant`` alone outside quiet hours; inside, move it to the window's end. Never drops."""
    key = tz if isinstance(tz, str) else tz.key
    # Cached only for a named zone and a UTC instant: an equal instant with another tzinfo must get
    # its own Deferral back (callers format it).
    if key is None or instant.tzinfo is not UTC:
        return _apply(qh, tz, instant)
    return _apply_named(qh, key, instant)


@functools.lru_cache(maxsize=1 << 16)
def _apply_named(qh: QuietHours, key: str, instant: datetime) -> Deferral:
    """A planner run asks this for 100,000 occurrences that share a few thousand (window, zone,
    instant) triples (cadence walks are shared too): each is worked out once. Windows and deferrals
    are immutable and the zone's rules are pinned per process."""
    return _apply(qh, key, instant)


def _apply(qh: QuietHours, tz: TzLike, instant: datetime) -> Deferral:
    if not in_quiet_hours(qh, tz, instant):
        return Deferral(instant, False, instant)
    return Deferral(quiet_window_end(qh, tz, instant), True, instant)
