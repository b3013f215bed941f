"""Assertions over sent messages that explain a failure date by date, in local time."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from planner.core.cadence import Cadence
from planner.core.localtime import format_offset, get_zone, parse_wall_time, resolve_detailed, to_local
from planner.testing.sent import SentMessage, SentMessages, as_date, describe_date

if TYPE_CHECKING:
    from planner.testing.records import DeliveryRecord, NextSend

ON_TIME = timedelta(minutes=1)
"""A send counts as "at 08:00" from 08:00:00 up to (not including) 08:01:00."""


@dataclass
class _Expectation:
    """Per local date: the instant a send is due, or None when any time that day will do."""

    due: dict[date, datetime | None]
    notes: dict[date, str] = field(default_factory=dict)


@dataclass
class _Problems:
    missing: list[date] = field(default_factory=list)
    doubled: list[tuple[date, list[SentMessage]]] = field(default_factory=list)
    wrong_time: list[tuple[date, SentMessage, datetime]] = field(default_factory=list)
    unexpected: list[tuple[date, list[SentMessage]]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.missing) + len(self.doubled) + len(self.wrong_time) + len(self.unexpected)


def _local_stamp(instant: datetime, tz: str) -> str:
    local = to_local(instant, tz)
    clock = local.strftime("%H:%M:%S" if local.second or local.microsecond else "%H:%M")
    return f"{clock} {format_offset(local.utcoffset())}"


def _select(
    sent: Iterable[SentMessage],
    recipient: str,
    kind: str | None,
    channel: str | None,
    first: date,
    last: date,
) -> list[SentMessage]:
    return [
        m
        for m in sent
        if m.recipient == recipient
        and (kind is None or m.kind == kind)
        and (channel is None or m.channel == channel)
        and first <= m.local_date <= last
    ]


def _compare(found: Sequence[SentMessage], expectation: _Expectation, tolerance: timedelta) -> _Problems:
    by_date: dict[date, list[SentMessage]] = {}
    for message in found:
        by_date.setdefault(message.local_date, []).append(message)
    problems = _Problems()
    for day, due in sorted(expectation.due.items()):
        messages = by_date.get(day, [])
        if not messages:
            problems.missing.append(day)
        elif len(messages) > 1:
            problems.doubled.append((day, messages))
        elif due is not None and not (due <= messages[0].sent_at < due + tolerance):
            problems.wrong_time.append((day, messages[0], due))
    for day, messages in sorted(by_date.items()):
        if day not in expectation.due:
            problems.unexpected.append((day, messages))
    return problems


def _report(
    headline: str,
    problems: _Problems,
    expectation: _Expectation,
    found: Sequence[SentMessage],
    zone: str | None,
) -> str:
    lines = [f"{headline}; {len(problems)} problem(s):"]
    if problems.missing:
        lines.append(f"  missing     {', '.join(describe_date(d) for d in problems.missing)}")
    for day, messages in problems.doubled:
        times = ", ".join(f"{m.local_time} {m.utc_offset}" for m in messages)
        lines.append(f"  doubled     {describe_date(day)}: sent {len(messages)} times: {times}")
    for day, message, due in problems.wrong_time:
        note = expectation.notes.get(day, "")
        lines.append(
            f"  wrong time  {describe_date(day)}: sent {message.local_time} {message.utc_offset}, "
            f"expected {_local_stamp(due, zone or message.timezone)}{note}"
        )
    for day, messages in problems.unexpected:
        times = ", ".join(f"{m.local_time} {m.utc_offset}" for m in messages)
        lines.append(f"  unexpected  {describe_date(day)}: {times}")
    lines.append("what was sent (local date, local time, offset, [UTC]):")
    lines.extend(f"  {m.describe()}" for m in found)
    if not found:
        lines.append("  (nothing)")
    return "\n".join(lines)


def _zone_for(found: Sequence[SentMessage], timezone: str | None) -> str | None:
    if timezone is not None:
        return get_zone(timezone).key
    zones = {m.timezone for m in found}
    return zones.pop() if len(zones) == 1 else None


def _what(recipient: str, kind: str | None, channel: str | None) -> str:
    return f"{recipient} {kind or 'any kind'}/{channel or 'any channel'}"


def assert_sent_once_daily_at(
    sent: Iterable[SentMessage],
    recipient: str,
    *,
    kind: str,
    local_time: str,
    start: date | str,
    end: date | str,
    weekdays_only: bool = False,
    days: str | Sequence[str] | None = None,
    rrule: str | None = None,
    rule_start: date | str | None = None,
    channel: str | None = None,
    timezone: str | None = None,
    tolerance: timedelta = ON_TIME,
) -> list[SentMessage]:
    """Assert one send of ``kind`` to ``recipient`` at ``local_time`` on each matching local date.

    The dates are ``start`` to ``end`` (both included) that match ``days`` ('daily', 'weekdays',
    'weekends' or weekday names; ``weekdays_only=True`` is short for 'weekdays'), or the recurrence
    rule ``rrule`` (``"FREQ=MONTHLY;BYDAY=-1FR"``: the last Friday of each month), anchored at
    ``rule_start`` when it counts from a date, exactly as the service expands it. The due instant
    of each date follows the service's policy: a wall time in a DST gap moves forward by the gap
    (02:30 on 2026-03-08 in New York is due 03:30 EDT), one in an overlap is due at its first
    occurrence, and a date that does not exist in the zone expects nothing. Any other send of the
    kind on a local date in the range is a failure. Returns the matching messages in order.
    """
    if sum((weekdays_only, days is not None, rrule is not None)) > 1:
        raise TypeError("pass one of weekdays_only=True, days=... or rrule=...")
    pattern: str | Sequence[str] = "weekdays" if weekdays_only else (days or "daily")
    anchor = None if rule_start is None else as_date(rule_start, "rule_start")
    cadence = Cadence.parse(local_time, pattern, rrule=rrule, start_date=anchor)
    first, last = as_date(start, "start"), as_date(end, "end")
    if last < first:
        raise ValueError(f"end {last} is before start {first}")
    found = _select(sent, recipient, kind, channel, first, last)
    zone = _zone_for(found, timezone)
    expectation = _daily_expectation(cadence, local_time, first, last, zone, found)
    problems = _compare(found, expectation, tolerance)
    if problems:
        headline = (
            f"{_what(recipient, kind, channel)}: expected one send at {local_time} local on each of "
            f"{len(expectation.due)} date(s) from {first} to {last} ({cadence.rule or cadence.days_text()})"
        )
        raise AssertionError(_report(headline, problems, expectation, found, zone))
    return found


def _daily_expectation(
    cadence: Cadence, local_time: str, first: date, last: date, zone: str | None, found: Sequence[SentMessage]
) -> _Expectation:
    """When the service is due to send on each matching date, by its own DST policy."""
    expectation = _Expectation(due={})
    day = first
    while day <= last:
        if cadence.matches(day):
            if zone is None:
                expectation.due[day] = None
            else:
                resolution = resolve_detailed(day, cadence.wall_time, zone)
                if resolution is not None:
                    expectation.due[day] = resolution.instant
                    if resolution.adjustment == "gap":
                        expectation.notes[day] = f" ({local_time} does not exist that day: DST gap)"
        day += timedelta(days=1)
    if zone is None and found:
        # Several zones over the range (the recipient moved): judge each send in its own zone.
        for message in found:
            if message.local_date in expectation.due:
                resolution = resolve_detailed(message.local_date, cadence.wall_time, message.timezone)
                expectation.due[message.local_date] = resolution.instant if resolution else None
    return expectation


def assert_sent_on_local_dates(
    sent: Iterable[SentMessage],
    recipient: str,
    *,
    kind: str | None,
    dates: Iterable[date | str],
    start: date | str | None = None,
    end: date | str | None = None,
    local_time: str | None = None,
    channel: str | None = None,
    tolerance: timedelta = ON_TIME,
) -> list[SentMessage]:
    """Assert exactly one send on each of ``dates`` (local) and none on other dates of the range.

    The range is ``start`` to ``end``, by default the first to the last of ``dates``. With
    ``local_time``, each send must also be at that wall time (with the DST policy of
    :func:`assert_sent_once_daily_at`). Returns the matching messages in order.
    """
    wanted = sorted({as_date(d, "dates") for d in dates})
    if not wanted and (start is None or end is None):
        raise ValueError("with no dates, pass start and end to say which range must be empty")
    first = as_date(start, "start") if start is not None else wanted[0]
    last = as_date(end, "end") if end is not None else wanted[-1]
    outside = [d for d in wanted if not first <= d <= last]
    if outside:
        raise ValueError(f"dates {outside} are outside {first}..{last}")
    found = _select(sent, recipient, kind, channel, first, last)
    zone = _zone_for(found, None)
    expectation = _Expectation(due={})
    wall = parse_wall_time(local_time, "local_time") if local_time is not None else None
    for day in wanted:
        due: datetime | None = None
        if wall is not None and zone is not None:
            resolution = resolve_detailed(day, wall, zone)
            due = resolution.instant if resolution else None
        expectation.due[day] = due
    problems = _compare(found, expectation, tolerance)
    if problems:
        at = f" at {local_time} local" if local_time else ""
        headline = (
            f"{_what(recipient, kind, channel)}: expected one send{at} on exactly {len(wanted)} date(s) "
            f"between {first} and {last}"
        )
        raise AssertionError(_report(headline, problems, expectation, found, zone))
    return found


class _NextSendSource(Protocol):
    """What :func:`assert_next_send_at` reads: the kit's service."""

    def next_send(
        self, recipient: str, kind: str, *, channel: str | None = None, on: date | str | None = None
    ) -> NextSend: ...


def assert_next_send_at(
    service: _NextSendSource,
    recipient: str,
    *,
    kind: str,
    local_time: str,
    on: date | str | None = None,
    channel: str | None = None,
) -> NextSend:
    """Assert that the recipient's next send of ``kind`` (on the local date ``on`` when given) goes
    at ``local_time`` local: "the daily brief now goes at 19:30", "with no history at 09:00". The
    send is the planned delivery once the planner has decided the date, else the planner's own
    decision run ahead; a failure says which, and why that time (a learned time's basis)."""
    wanted = parse_wall_time(local_time, "local_time")
    found = service.next_send(recipient, kind, channel=channel, on=on)
    if found.send_local is None or found.send_local.time().replace(tzinfo=None) != wanted:
        raise AssertionError(
            f"{_what(recipient, kind, channel)}: expected the next send at {local_time} local; "
            f"found {describe_date(found.local_date)} {found}"
        )
    return found


class _DigestSource(Protocol):
    """What :func:`assert_digests_sent` reads: the kit's service."""

    @property
    def sent(self) -> SentMessages: ...

    def digest_events(self, delivery_id: int) -> list[dict[str, Any]]: ...


def assert_digests_sent(
    service: _DigestSource,
    recipient: str,
    *,
    kind: str,
    events: Mapping[date | str, Sequence[Mapping[str, Any]]],
    local_time: str | None = None,
    start: date | str | None = None,
    end: date | str | None = None,
    channel: str | None = None,
) -> list[SentMessage]:
    """Assert one digest of ``kind`` on each local date of ``events`` (at ``local_time`` when given),
    listing exactly those events' data in that order, and no digest on the range's other dates
    (an occurrence without events is skipped). The range is ``start`` to ``end``, by default the
    first to the last date of ``events``. Returns the digests in order."""
    wanted = {as_date(day, "events"): [dict(e) for e in listed] for day, listed in events.items()}
    found = assert_sent_on_local_dates(
        service.sent,
        recipient,
        kind=kind,
        dates=wanted,
        start=start,
        end=end,
        local_time=local_time,
        channel=channel,
    )
    wrong = []
    for message in found:
        listed, expected = service.digest_events(message.delivery_id), wanted[message.local_date]
        if listed != expected:
            wrong.append(f"  {describe_date(message.local_date)}: listed {listed}; expected {expected}")
    if wrong:
        headline = f"{_what(recipient, kind, channel)}: {len(wrong)} digest(s) listed other events:"
        raise AssertionError("\n".join([headline, *wrong]))
    return found


class _DeliverySource(Protocol):
    """What :func:`assert_sent_as_fallback` reads: the kit's service."""

    @property
    def sent(self) -> SentMessages: ...

    def deliveries(
        self,
        recipient: str | None = None,
        *,
        kind: str | None = None,
        channel: str | None = None,
        status: str | None = None,
    ) -> list[DeliveryRecord]: ...


def assert_sent_as_fallback(
    service: _DeliverySource, recipient: str, *, kind: str, channel: str, because: str | None = None
) -> SentMessage:
    """Assert that ``kind`` went out to ``recipient`` on ``channel`` once, as the fallback of a
    delivery on the other channel (``because`` that condition, when given: ``"bounced"``,
    ``"undelivered"``, ``"invalid_address"``...): "the SMS went out because the email bounced".
    Returns the message sent."""
    records = service.deliveries(recipient, kind=kind)
    by_id = {r.id: r for r in records}
    fallbacks = [r for r in records if r.channel == channel and r.fallback_for is not None]
    problems = []
    message = None
    if len(fallbacks) != 1:
        problems.append(f"expected one fallback on {channel}, found {len(fallbacks)}")
    else:
        message = _fallback_problems(service, fallbacks[0], by_id, channel, because, problems)
    if problems or message is None:
        listed = "\n".join(f"  {r}" for r in records) or "  (none)"
        headline = f"{_what(recipient, kind, channel)}: not sent as a fallback: {'; '.join(problems)}"
        raise AssertionError(f"{headline}\ndeliveries of {recipient} {kind}:\n{listed}")
    return message


def _fallback_problems(
    service: _DeliverySource,
    fallback: DeliveryRecord,
    by_id: Mapping[int, DeliveryRecord],
    channel: str,
    because: str | None,
    problems: list[str],
) -> SentMessage | None:
    """What is wrong with ``fallback`` (appended to ``problems``); its message when it was sent once."""
    first = by_id.get(fallback.fallback_for or 0)
    name = f"#{fallback.id}"
    if first is None or first.channel == channel:
        problems.append(f"{name} stands in for #{fallback.fallback_for}, not a delivery on another channel")
    if because is not None and fallback.fallback_because != because:
        problems.append(f"{name} was called because {fallback.fallback_because}, expected {because}")
    sent = [m for m in service.sent if m.delivery_id == fallback.id]
    if fallback.status != "sent" or len(sent) != 1:
        problems.append(f"{name} is {fallback.status} and was sent {len(sent)} time(s); expected once")
        return None
    return sent[0]


def assert_locale_used(
    sent: SentMessages, recipient: str, locale: str, *, kind: str | None = None, channel: str | None = None
) -> list[SentMessage]:
    """Assert that messages went to ``recipient`` (of ``kind``, on ``channel``, when given) and that
    every one was rendered from the templates of ``locale`` (a BCP 47 tag, any case; the default
    templates' language is ``PLANNER_DEFAULT_LOCALE``). Returns them."""
    found = [
        m
        for m in sent
        if m.recipient == recipient and kind in (None, m.kind) and channel in (None, m.channel)
    ]
    wrong = [m for m in found if (m.locale or "").lower() != locale.lower()]
    if not found or wrong:
        rows = "\n".join(f"  {m.describe()}  locale={m.locale}" for m in found) or "  (none)"
        headline = f"{_what(recipient, kind, channel)}: expected every message in {locale!r}"
        raise AssertionError(f"{headline}; {len(wrong)} of {len(found)} were not:\n{rows}")
    return found
