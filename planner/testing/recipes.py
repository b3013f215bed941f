"""Helpers that put recipients, subscriptions and engagement into a kit service, one import line each.

Every helper writes one JSON line and imports it through the same validated path as
``planner import``, so the kit accepts and rejects exactly what the service does.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Final

from planner.commands.importer import ImportReport
from planner.core.localtime import parse_wall_time, resolve
from planner.testing.clock import SimClock, as_instant
from planner.testing.errors import KitError
from planner.testing.sent import as_date

QuietHoursSpec = str | tuple[str, str] | Mapping[str, str]


class _Auto:
    """Marks an address the kit makes up (``<id>@example.com``, a +1555 number)."""

    def __repr__(self) -> str:
        return "AUTO"


AUTO: Final = _Auto()


def _quiet_hours_json(spec: Mapping[str, QuietHoursSpec]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for channel, window in spec.items():
        if window == "none":  # the import format's explicit "no quiet hours"
            result[channel] = "none"
        elif isinstance(window, str):
            start, sep, end = window.partition("-")
            if not sep:
                raise ValueError(f"quiet_hours[{channel!r}]: {window!r} is not 'HH:MM-HH:MM'")
            result[channel] = {"start": start.strip(), "end": end.strip()}
        elif isinstance(window, tuple):
            start, end = window
            result[channel] = {"start": start, "end": end}
        else:
            result[channel] = dict(window)
    return result


def learned_time(between: tuple[str, str] = ("07:00", "21:00"), default: str = "09:00") -> dict[str, Any]:
    """A learned send time for ``subscribe(at=...)``: one send a day, at the half hour of the window
    ``between`` in which the recipient engages most, ``default`` without enough history."""
    return {"auto": {"between": list(between), "default": default}}


def _days_json(days: str | Sequence[str]) -> str | list[str]:
    return days if isinstance(days, str) else list(days)


def _made_up_email(recipient_id: str) -> str:
    local = re.sub(r"[^A-Za-z0-9._-]", "-", recipient_id).strip(".") or "recipient"
    return f"{local}@example.com"


class Recipes:
    """The data helpers of :class:`~planner.testing.service.PlannerService`."""

    clock: SimClock

    def __init__(self) -> None:
        self._recipients: dict[str, dict[str, Any]] = {}
        self._phones: Iterator[int] = itertools.count(1)

    def import_lines(self, lines: Iterable[str]) -> ImportReport:
        raise NotImplementedError

    def add_recipient(
        self,
        recipient_id: str,
        *,
        timezone: str,
        email: str | _Auto | None = AUTO,
        phone: str | _Auto | None = AUTO,
        quiet_hours: Mapping[str, QuietHoursSpec] | None = None,
        opt_out: Iterable[str] = (),
        subscriptions: Iterable[Mapping[str, Any]] = (),
        locale: str | None = None,
    ) -> None:
        """Create (or replace) a recipient as one import line.

        ``email``/``phone`` default to made-up addresses; pass ``None`` for none. ``quiet_hours``
        maps a channel to ``("21:00", "08:00")``, ``"21:00-08:00"`` or ``{"start": ..., "end": ...}``.
        ``subscriptions`` are import-format objects (``{"kind", "channel", "at", "days"}``).
        ``locale``: a BCP 47 tag (``"fr"``, ``"pt-BR"``) choosing the templates and their formats.
        """
        line: dict[str, Any] = {"type": "recipient", "id": recipient_id, "timezone": timezone}
        if locale is not None:
            line["locale"] = locale
        line["email"] = _made_up_email(recipient_id) if isinstance(email, _Auto) else email
        line["phone"] = f"+1555{next(self._phones):07d}" if isinstance(phone, _Auto) else phone
        if quiet_hours:
            line["quiet_hours"] = _quiet_hours_json(quiet_hours)
        opted = list(opt_out)
        if opted:
            line["opt_out"] = opted
        line["subscriptions"] = [dict(s) for s in subscriptions]
        self._import_recipient(line)

    def update_recipient(self, recipient_id: str, **changes: Any) -> None:
        """Change ``timezone``, ``email``, ``phone``, ``quiet_hours``, ``opt_out`` or ``locale`` (the
        service's rules for a changed zone or quiet hours apply: pending future sends are re-planned)."""
        line = dict(self._recipient(recipient_id))
        allowed = {"timezone", "email", "phone", "quiet_hours", "opt_out", "locale"}
        unknown = sorted(set(changes) - allowed)
        if unknown:
            raise TypeError(
                f"update_recipient: unknown field(s) {unknown}; expected some of {sorted(allowed)}"
            )
        for name, value in changes.items():
            if name == "quiet_hours":
                value = _quiet_hours_json(value) if value else None
            elif name == "opt_out":
                value = list(value)
            if value is None or value == []:
                line.pop(name, None)
            else:
                line[name] = value
        self._import_recipient(line)

    def subscribe(
        self,
        recipient_id: str,
        kind: str,
        *,
        at: str | Sequence[str] | Mapping[str, Any],
        channel: str = "email",
        days: str | Sequence[str] = "daily",
        rrule: str | None = None,
        start_date: date | str | None = None,
        end_date: date | str | None = None,
        snooze_until: date | str | None = None,
        digest: bool = False,
        active: bool = True,
        fallback: Mapping[str, Any] | None = None,
    ) -> None:
        """Add (or change) the recipient's ``kind``/``channel`` subscription: ``at`` 'HH:MM' local (or
        a list of them, or :func:`learned_time`), ``days`` 'daily', 'weekdays', 'weekends' or weekday
        names such as ``["mon", "thu"]``, or instead an ``rrule`` such as ``"FREQ=MONTHLY;BYDAY=-1FR"``;
        ``start_date``, ``end_date`` and ``snooze_until`` are local dates. ``digest=True``: each
        occurrence lists the events recorded since the last digest (``record_event``). ``fallback``:
        the channel to try when a send fails, ``{"channel": "sms", "on": ["bounced", "dead"],
        "within": "2h"}`` (see :mod:`planner.core.fallback`)."""
        line = dict(self._recipient(recipient_id))
        subscription: dict[str, Any] = {
            "kind": kind,
            "channel": channel,
            "at": at if isinstance(at, str) else dict(at) if isinstance(at, Mapping) else list(at),
        }
        if rrule is not None:
            subscription["rrule"] = rrule
        else:
            subscription["days"] = _days_json(days)
        for name, value in (
            ("start_date", start_date),
            ("end_date", end_date),
            ("snooze_until", snooze_until),
        ):
            if value is not None:
                subscription[name] = value if isinstance(value, str) else value.isoformat()
        if digest:
            subscription["digest"] = True
        if not active:
            subscription["active"] = False
        if fallback is not None:
            subscription["fallback"] = dict(fallback)
        others = [
            s for s in line.get("subscriptions", []) if (s.get("kind"), s.get("channel")) != (kind, channel)
        ]
        line["subscriptions"] = [*others, subscription]
        self._import_recipient(line)

    def unsubscribe(self, recipient_id: str, kind: str, *, channel: str = "email") -> None:
        line = dict(self._recipient(recipient_id))
        subscriptions = line.get("subscriptions", [])
        kept = [s for s in subscriptions if (s.get("kind"), s.get("channel")) != (kind, channel)]
        if len(kept) == len(subscriptions):
            raise KitError(f"{recipient_id!r} has no {kind}/{channel} subscription")
        line["subscriptions"] = kept
        self._import_recipient(line)

    def engage(
        self,
        recipient_id: str,
        event: str = "opened",
        *,
        at: datetime | str | None = None,
        kind: str | None = None,
    ) -> None:
        """Record an engagement event (``opened``, ``clicked``, ``replied``), by default now."""
        when = self.clock.now() if at is None else at
        stamp = (
            as_instant(when, "at").isoformat().replace("+00:00", "Z") if isinstance(when, datetime) else when
        )
        line: dict[str, Any] = {
            "type": "engagement",
            "recipient_id": recipient_id,
            "event": event,
            "at": stamp,
        }
        if kind is not None:
            line["kind"] = kind
        self.import_lines([json.dumps(line)])

    def engage_at_local(
        self,
        recipient_id: str,
        local_time: str,
        *,
        on: date | str | None = None,
        event: str = "opened",
        kind: str | None = None,
    ) -> datetime:
        """Record an engagement at ``local_time`` ('HH:MM') on the local date ``on`` (default: today)
        in the recipient's zone, resolved by the service's DST policy; returns its instant."""
        zone = str(self._recipient(recipient_id)["timezone"])
        day = self.clock.today(zone) if on is None else as_date(on, "on")
        instant = resolve(day, parse_wall_time(local_time, "local_time"), zone)
        if instant is None:
            raise KitError(f"{day} does not exist in {zone}: no {local_time} to engage at")
        self.engage(recipient_id, event, at=instant, kind=kind)
        return instant

    def _import_recipient(self, line: dict[str, Any]) -> None:
        self.import_lines([json.dumps({k: v for k, v in line.items() if v is not None})])

    def _recipient(self, recipient_id: str) -> dict[str, Any]:
        try:
            return self._recipients[recipient_id]
        except KeyError:
            raise KitError(f"unknown recipient {recipient_id!r}; add it first with add_recipient") from None

    def recipient_line(self, recipient_id: str) -> dict[str, Any]:
        """The recipient as last imported (a copy of the JSON object)."""
        return json.loads(json.dumps(self._recipient(recipient_id)))  # type: ignore[no-any-return]
