"""Local wall-clock times → UTC instants, under one documented policy.

A subscription says "08:00 in America/New_York". This module turns such a wall time on a given
local date into the single UTC instant at which it is due:

* A wall time that exists once resolves to that instant.
* A wall time inside a gap (clocks jump forward: spring-forward DST, an offset change) is shifted
  forward by the length of the gap: 02:30 on 2026-03-08 in America/New_York → 03:30 EDT
  (07:30 UTC). A 30-minute gap (Australia/Lord_Howe) shifts by 30 minutes, a 2-hour gap
  (Antarctica/Troll) by 2 hours, a gap at midnight (America/Santiago, America/Havana) moves
  00:30 to 01:30 on the same date.
* A wall time inside an overlap (clocks fall back, so it happens twice) resolves to its FIRST
  occurrence: 01:30 on 2026-11-01 in America/New_York → 01:30 EDT (05:30 UTC). It is sent once,
  never twice.
* A local date that does not exist at all in the zone (Pacific/Apia skipped 2011-12-30) has no
  occurrence: ``resolve`` returns ``None``.

This is exactly what the standard library does with ``fold=0`` (PEP 495), so the rule holds for
gaps and overlaps of any size at any hour, including negative DST (Europe/Dublin) and the
Ramadan changes of Africa/Casablanca. ``pendulum.datetime()`` picks the *second* occurrence by
default, which is why it is not used here.

Arithmetic is never done on local wall-clock datetimes: days are stepped on ``date`` objects and
every instant is computed through UTC.

Zones are always read from the ``tzdata`` package (a pinned project dependency), never from the
host's ``/usr/share/zoneinfo``: the host copy can be years older and disagree about future
rules, and it contains a ``localtime`` entry that is whatever zone the host happens to be in.
"""

from __future__ import annotations

import functools
import importlib
import re
from dataclasses import dataclass
from datetime import UTC as UTC  # re-exported: the one UTC tzinfo (datetime.timezone.utc)
from datetime import date, datetime, time, timedelta
from importlib import resources
from typing import Literal, TypeAlias
from zoneinfo import ZoneInfo

from planner.errors import InvalidInput, NaiveDatetimeError, UnknownTimezoneError

TzLike: TypeAlias = str | ZoneInfo
Adjustment = Literal["exact", "gap", "overlap"]

_NO_SHIFT = timedelta(0)
_WALL_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


class _PinnedZone(ZoneInfo):
    """A zone built from the ``tzdata`` package's file.

    ``ZoneInfo.from_file`` zones refuse to pickle; RQ pickles job arguments, so they pickle as
    "the zone with this key", which unpickles through the same cache.
    """

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (get_zone, (self.key,))

    def __repr__(self) -> str:
        return f"ZoneInfo(key={self.key!r})"


@functools.cache
def available_zones() -> frozenset[str]:
    """Every zone name ``get_zone`` accepts (the ``tzdata`` package's list)."""
    return frozenset(resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8").split())


@functools.cache
def tzdata_version() -> str:
    """The IANA release of the time zone rules in use, e.g. '2026f'."""
    return str(importlib.import_module("tzdata").IANA_VERSION)


def get_zone(tz: TzLike) -> ZoneInfo:
    """The zone named ``tz``; unknown or junk names raise ``UnknownTimezoneError``, never UTC."""
    if isinstance(tz, ZoneInfo):
        if tz.key is None:
            # An anonymous zone built from a file: there is no name to re-read it by.
            return tz
        tz = tz.key
    if not isinstance(tz, str):
        raise UnknownTimezoneError(tz)
    return _load_zone(tz)


@functools.cache
def _load_zone(name: str) -> ZoneInfo:
    # Checking the name against the list first also keeps '../x', '' and 'localtime' away from
    # the file system.
    if name not in available_zones():
        raise UnknownTimezoneError(name)
    with resources.files("tzdata.zoneinfo").joinpath(*name.split("/")).open("rb") as file:
        return _PinnedZone.from_file(file, key=name)


def parse_wall_time(value: object, field: str) -> time:
    """Parse 'HH:MM' (00:00–23:59, two digits each) at a boundary (import, CLI, settings)."""
    match = _WALL_TIME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidInput(field, value, "a wall time 'HH:MM' such as '08:00'")
    return time(int(match[1]), int(match[2]))


@dataclass(frozen=True)
class Resolution:
    """Where a wall time on a local date actually lands.

    ``local`` is the aware local time hit (03:30 EDT for a requested 02:30 in the spring gap);
    ``shift`` is how far a gap pushed it forward, zero otherwise.
    """

    instant: datetime
    local: datetime
    adjustment: Adjustment
    shift: timedelta


def resolve_detailed(local_date: date, wall_time: time, tz: TzLike) -> Resolution | None:
    """Resolve ``wall_time`` on ``local_date`` in ``tz`` per the module policy."""
    zone = get_zone(tz)
    if wall_time.tzinfo is not None:
        raise InvalidInput("wall_time", wall_time, "a wall time without a UTC offset, e.g. 08:00")
    if wall_time.fold:
        wall_time = wall_time.replace(fold=0)
    if zone.key is None:
        return _resolve(local_date, wall_time, zone)
    return _resolve_named(local_date, wall_time, zone.key)


@functools.lru_cache(maxsize=1 << 16)
def _resolve_named(local_date: date, wall_time: time, key: str) -> Resolution | None:
    """A planner run asks for a few thousand distinct (date, wall time, zone) triples 100,000
    times: each is computed once (``utcoffset`` on tzdata zones is the costly part). Resolutions
    are immutable and depend on nothing else (the zone's rules are pinned per process)."""
    return _resolve(local_date, wall_time, _load_zone(key))


def _resolve(local_date: date, wall_time: time, zone: ZoneInfo) -> Resolution | None:
    # fold=0 is the policy: first occurrence in an overlap, offset-before-the-jump in a gap.
    wall = datetime.combine(local_date, wall_time, zone)
    instant = wall.astimezone(UTC)
    local = instant.astimezone(zone)
    if local.date() != local_date:
        if not _date_exists(local_date, zone):
            return None
    elif local.time() == wall_time:
        if zone.utcoffset(wall.replace(fold=1)) != local.utcoffset():
            return Resolution(instant, local, "overlap", _NO_SHIFT)
        return Resolution(instant, local, "exact", _NO_SHIFT)
    # The gap's length: how far the wall clock moved.
    return Resolution(instant, local, "gap", local.replace(tzinfo=None) - wall.replace(tzinfo=None))


def resolve(local_date: date, wall_time: time, tz: TzLike) -> datetime | None:
    """The UTC instant of ``wall_time`` on ``local_date`` in ``tz``; None if the date does not exist."""
    resolution = resolve_detailed(local_date, wall_time, tz)
    return None if resolution is None else resolution.instant


def _date_exists(local_date: date, zone: ZoneInfo) -> bool:
    # A date is missing only if its midnight falls in a gap that reaches past its end (Apia
    # went from 2011-12-29 24:00 straight to 2011-12-31 00:00); a gap ending within the date
    # leaves the rest of it in existence.
    midnight = datetime.combine(local_date, time(0), tzinfo=zone).astimezone(UTC)
    return midnight.astimezone(zone).date() == local_date


def to_local(instant: datetime, tz: TzLike) -> datetime:
    """The aware local time of ``instant`` in ``tz``; a naive datetime is an error, never assumed UTC."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise NaiveDatetimeError(instant)
    return instant.astimezone(get_zone(tz))


def local_date_of(instant: datetime, tz: TzLike) -> date:
    """The local calendar date of ``instant`` in ``tz``."""
    return to_local(instant, tz).date()


def format_local(dt: datetime) -> str:
    """ISO 8601 with the offset, e.g. '2026-03-08T03:30:00-04:00'."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise NaiveDatetimeError(dt)
    return dt.isoformat()


def format_offset(offset: timedelta | None) -> str:
    """A UTC offset as '+05:45' / '-04:00'."""
    minutes = int((offset or timedelta(0)).total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{mins:02d}"


def hhmm(value: time | datetime) -> str:
    """A wall time as 'HH:MM' ('HH:MM:SS' when it has seconds)."""
    wall = value.time() if isinstance(value, datetime) else value
    return wall.isoformat(timespec="minutes" if not (wall.second or wall.microsecond) else "auto")
