"""Simulated time for kit services: freezegun holds the clock, the kit moves it event by event.

Moving forward, the clock stops at every instant something would happen in production: each top
of the hour (the hourly planner run) and each instant an RQ job is scheduled for (read from the
services' ``ScheduledJobRegistry`` scores). At each stop every attached service plans (on the
hour), moves its due scheduled jobs to their queues and runs them in-process, so a message is
sent at the simulated instant it was due.

RQ's own scheduler is never used: it would enqueue a job whose instant is behind the server's
real clock at once, whatever the simulated time says.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from planner.core.localtime import TzLike, parse_wall_time, resolve, to_local

if TYPE_CHECKING:
    from freezegun.api import FrozenDateTimeFactory, StepTickTimeFactory, TickingDateTimeFactory, _freeze_time

DEFAULT_START = datetime(2026, 1, 5, tzinfo=UTC)
"""A Monday, midnight UTC: where a kit clock starts unless told otherwise."""

FREEZEGUN_IGNORE = ("_pytest.timing",)
ONE_SECOND = timedelta(seconds=1)
ONE_HOUR = timedelta(hours=1)


class KitService(Protocol):
    """What the clock needs from a service (see :class:`planner.testing.service.PlannerService`)."""

    def on_instant(self, now: datetime, *, top_of_hour: bool) -> None: ...

    def next_job_at(self) -> datetime | None: ...


def as_instant(value: datetime | str, field_name: str = "instant") -> datetime:
    """An aware UTC datetime from an aware datetime or an ISO-8601 string with 'Z' or an offset."""
    if isinstance(value, str):
        from planner.clock import parse_instant

        return parse_instant(value, field_name)
    if not isinstance(value, datetime):
        raise TypeError(f"{field_name}: expected an aware datetime or an ISO-8601 string, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{field_name}: {value.isoformat()} is naive; pass an aware datetime or a string such as "
            "'2026-03-08T12:00Z' (the kit never guesses a zone)"
        )
    return value.astimezone(UTC)


def _top_of_hour(instant: datetime) -> bool:
    return instant.minute == 0 and instant.second == 0 and instant.microsecond == 0


def _next_hour_after(instant: datetime) -> datetime:
    return instant.replace(minute=0, second=0, microsecond=0) + ONE_HOUR


class SimClock:
    """The simulated clock of a test. Call it (or :meth:`now`) for the current instant (UTC).

    Time only moves forward, and only when asked: :meth:`advance` and :meth:`advance_to` run
    everything due on the way; :meth:`start_at` sets the starting instant before anything happened.
    """

    def __init__(self, start: datetime | str = DEFAULT_START) -> None:
        self._now = as_instant(start, "start")
        self._services: list[KitService] = []
        self._freezer: _freeze_time | None = None
        self._frozen: FrozenDateTimeFactory | StepTickTimeFactory | TickingDateTimeFactory | None = None
        self._used = False
        self.steps = 0
        """How many instants the clock stopped at (useful when tuning a slow test)."""

    # -- freezing ---------------------------------------------------------------------------------

    def freeze(self) -> SimClock:
        """Hold freezegun's clock at the simulated instant (idempotent)."""
        if self._freezer is None:
            import freezegun

            # Modules imported under freezegun see its FakeDatetime as ``datetime``, and pydantic
            # and SQLModel cannot build a schema for it: load the service's modules first.
            import planner.app
            import planner.commands.importer  # noqa: F401

            self._freezer = freezegun.freeze_time(
                self._now,
                tick=False,
                # asyncio's loop reads time.monotonic, and a frozen one never wakes a sleep.
                real_asyncio=True,
                # pytest's own timing (durations, junit timestamps) keeps the real clock.
                ignore=list(FREEZEGUN_IGNORE),
            )
            self._frozen = self._freezer.start()
        return self

    def unfreeze(self) -> None:
        freezer, self._freezer, self._frozen = self._freezer, None, None
        if freezer is not None:
            freezer.stop()

    @property
    def frozen(self) -> bool:
        return self._freezer is not None

    def __enter__(self) -> SimClock:
        return self.freeze()

    def __exit__(self, *exc: object) -> None:
        self.unfreeze()

    # -- reading ----------------------------------------------------------------------------------

    def now(self) -> datetime:
        """The simulated instant, aware, in UTC."""
        return self._now

    def __call__(self) -> datetime:
        return self._now

    def local(self, tz: TzLike) -> datetime:
        """The simulated instant in the zone ``tz``."""
        return to_local(self._now, tz)

    def today(self, tz: TzLike) -> date:
        return self.local(tz).date()

    def __repr__(self) -> str:
        return f"<SimClock {self._now.isoformat()}>"

    # -- services ---------------------------------------------------------------------------------

    def attach(self, service: KitService) -> None:
        if service not in self._services:
            self._services.append(service)

    def detach(self, service: KitService) -> None:
        if service in self._services:
            self._services.remove(service)

    def mark_used(self) -> None:
        """Something now depends on the current instant (data was imported): no more start_at."""
        self._used = True

    # -- moving -----------------------------------------------------------------------------------

    def start_at(self, instant: datetime | str) -> None:
        """Set the starting instant. Only before anything was imported or the clock advanced."""
        target = as_instant(instant, "instant")
        if self._used:
            raise RuntimeError(
                f"start_at({target.isoformat()}): the clock is already in use at {self._now.isoformat()} "
                "(data was imported or time advanced); call start_at first, "
                "or override the planner_start fixture"
            )
        self._set(target)

    def advance(
        self,
        delta: timedelta | None = None,
        *,
        days: float = 0,
        hours: float = 0,
        minutes: float = 0,
        seconds: float = 0,
    ) -> datetime:
        """Move forward by ``delta`` (or days/hours/minutes/seconds), running everything due."""
        step = (delta or timedelta(0)) + timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
        if step < timedelta(0):
            raise ValueError(f"advance: {step} is negative; simulated time only moves forward")
        return self.advance_to(self._now + step)

    def advance_to(self, instant: datetime | str) -> datetime:
        """Move forward to ``instant``, stopping at every hour and every scheduled job on the way.

        Everything due at ``instant`` itself runs too, so after ``advance_to("2026-03-09T00:00Z")``
        the midnight planner run and the sends due at midnight have happened. Returns the new now.
        """
        target = as_instant(instant, "instant")
        if target < self._now:
            raise ValueError(
                f"advance_to({target.isoformat()}): that is before now ({self._now.isoformat()}); "
                "simulated time only moves forward"
            )
        self._used = True
        while True:
            self._process(self._now)
            following = self._next_event()
            if following > target:
                break
            self._set(following)
        self._set(target)
        return self._now

    def advance_to_local(self, local_time: str, *, timezone: str, on: date | None = None) -> datetime:
        """Move forward to the next ``local_time`` ('HH:MM') in ``timezone`` (on the local date
        ``on`` when given), resolved by the service's DST policy, running everything due."""
        wall = parse_wall_time(local_time, "local_time")
        day = on or self.today(timezone)
        for _ in range(3):  # a missing date (Apia, 2011) is skipped; no zone misses two in a row
            found = resolve(day, wall, timezone)
            if found is not None and (found >= self._now or on is not None):
                return self.advance_to(found)
            day += timedelta(days=1)
        raise ValueError(f"advance_to_local: {local_time} in {timezone} does not come again after {day}")

    def _process(self, now: datetime) -> None:
        self.steps += 1
        hourly = _top_of_hour(now)
        for service in list(self._services):
            service.on_instant(now, top_of_hour=hourly)

    def _next_event(self) -> datetime:
        """The first instant after now at which something is due."""
        following = _next_hour_after(self._now)
        for service in self._services:
            job_at = service.next_job_at()
            if job_at is None:
                continue
            # A job due now that is still waiting was created while now was processed (a release
            # "a moment later" rounds down to this second): time must move for it to run.
            job_at = max(job_at, self._now + ONE_SECOND) if job_at <= self._now else job_at
            following = min(following, job_at)
        return following

    def _set(self, instant: datetime) -> None:
        self._now = instant
        if self._frozen is not None:
            self._frozen.move_to(instant)
