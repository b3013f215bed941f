"""What the kit's capture adapter recorded, and queries over it in each recipient's local time."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import ClassVar, overload

from adapters.base import Message, SendResult
from adapters.capture import CaptureAdapter
from planner.core.localtime import format_offset, to_local

_DEDUP_DATE = re.compile(r"^(?:fallback:)?sub:\d+:(\d{4}-\d{2}-\d{2})(@\d{2}:\d{2})?$")
WEEKDAY_ABBREVIATIONS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def as_date(value: date | str, field_name: str = "date") -> date:
    """A ``date`` from a ``date`` or an ISO 'YYYY-MM-DD' string (a datetime is refused: ambiguous)."""
    if isinstance(value, datetime):
        raise TypeError(f"{field_name}: expected a local date, got the datetime {value.isoformat()}")
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"{field_name}: {value!r} is not a date 'YYYY-MM-DD'") from None


def describe_date(value: date) -> str:
    return f"{value.isoformat()} ({WEEKDAY_ABBREVIATIONS[value.weekday()]})"


@dataclass(frozen=True)
class SentMessage:
    """One message the service handed to the capture adapter, at a simulated instant.

    ``sent_at`` is when it was sent (UTC); ``local``, ``local_date``, ``local_time`` and
    ``utc_offset`` are that instant in the recipient's zone at the time of sending.
    ``planned_local_date`` is the local date the subscription fired for, which differs from
    ``local_date`` when quiet hours pushed the send past midnight.
    """

    message: Message
    sent_at: datetime
    timezone: str

    @property
    def recipient(self) -> str:
        return self.message.recipient_id

    @property
    def kind(self) -> str:
        return self.message.kind

    @property
    def channel(self) -> str:
        return self.message.channel

    @property
    def to(self) -> str:
        return self.message.to

    @property
    def subject(self) -> str | None:
        return self.message.subject

    @property
    def text(self) -> str:
        return self.message.text

    @property
    def scheduled_at(self) -> datetime:
        return self.message.scheduled_at

    @property
    def delivery_id(self) -> int:
        return self.message.delivery_id

    @property
    def locale(self) -> str | None:
        """The language of the templates the message was rendered from (a BCP 47 tag)."""
        return self.message.metadata.get("locale")

    @property
    def local(self) -> datetime:
        return to_local(self.sent_at, self.timezone)

    @property
    def local_date(self) -> date:
        return self.local.date()

    @property
    def local_time(self) -> str:
        """'HH:MM', or 'HH:MM:SS' when the send was not on a whole minute."""
        local = self.local
        return local.strftime("%H:%M:%S" if local.second or local.microsecond else "%H:%M")

    @property
    def utc_offset(self) -> str:
        return format_offset(self.local.utcoffset())

    @property
    def planned_local_date(self) -> date | None:
        match = _DEDUP_DATE.match(self.message.dedup_key)
        return date.fromisoformat(match[1]) if match else None

    def describe(self) -> str:
        """'2026-03-09 (Mon) 08:00 +11:00  ann daily_brief/email  [2026-03-08T21:00Z]'."""
        note = ""
        planned = self.planned_local_date
        if planned is not None and planned != self.local_date:
            note = f"  (for {planned.isoformat()})"
        stamp = self.sent_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        return (
            f"{describe_date(self.local_date)} {self.local_time} {self.utc_offset}  "
            f"{self.recipient} {self.kind}/{self.channel}  [{stamp}]{note}"
        )

    def __str__(self) -> str:
        return self.describe()


class RecordingCaptureAdapter(CaptureAdapter):
    """The capture adapter, also recording the simulated instant of each successful send.

    ``zone_of`` names the recipient's zone when the message is sent, so a later change of
    zone does not rewrite what was already received.
    """

    name: ClassVar[str] = "capture"

    def __init__(
        self,
        zone_of: Callable[[str], str],
        clock: Callable[[], datetime],
        *,
        fail_with: Callable[[Message], None] | None = None,
    ) -> None:
        super().__init__(fail_with=fail_with)
        self._zone_of = zone_of
        self._clock = clock
        self.records: list[SentMessage] = []

    def send(self, message: Message) -> SendResult:
        result = super().send(message)
        record = SentMessage(
            message=message,
            sent_at=self._clock().astimezone(UTC),
            timezone=self._zone_of(message.recipient_id),
        )
        with self._lock:
            self.records.append(record)
        return result

    def clear(self) -> None:
        super().clear()
        with self._lock:
            self.records.clear()

    def snapshot(self) -> list[SentMessage]:
        with self._lock:
            return list(self.records)


_Filter = Callable[[SentMessage], bool]


class SentMessages(Sequence[SentMessage]):
    """A live, filterable view of sent messages, in send order.

    Filters compose and are evaluated on access, so a view taken before the clock advances
    (``ann = sent.for_recipient("ann")``) still shows what is sent afterwards.
    """

    __slots__ = ("_filters", "_labels", "_source")

    def __init__(
        self,
        source: Callable[[], Sequence[SentMessage]],
        filters: tuple[_Filter, ...] = (),
        labels: tuple[str, ...] = (),
    ) -> None:
        self._source = source
        self._filters = filters
        self._labels = labels

    # -- filtering ----------------------------------------------------------------------------

    def where(self, predicate: _Filter, label: str = "where(...)") -> SentMessages:
        return SentMessages(self._source, (*self._filters, predicate), (*self._labels, label))

    def for_recipient(self, recipient: str) -> SentMessages:
        return self.where(lambda m: m.recipient == recipient, f"recipient={recipient}")

    def of_kind(self, kind: str) -> SentMessages:
        return self.where(lambda m: m.kind == kind, f"kind={kind}")

    def on_channel(self, channel: str) -> SentMessages:
        if channel not in ("email", "sms"):
            raise ValueError(f"channel: {channel!r} is invalid; expected 'email' or 'sms'")
        return self.where(lambda m: m.channel == channel, f"channel={channel}")

    def in_locale(self, locale: str) -> SentMessages:
        """Messages rendered from the templates of ``locale`` (a BCP 47 tag, any case)."""
        wanted = locale.lower()
        return self.where(lambda m: (m.locale or "").lower() == wanted, f"locale={locale}")

    def on_local_date(self, day: date | str) -> SentMessages:
        wanted = as_date(day)
        return self.where(lambda m: m.local_date == wanted, f"local_date={wanted.isoformat()}")

    def between_local_dates(self, start: date | str, end: date | str) -> SentMessages:
        """Sends whose local date is in ``[start, end]`` (both included)."""
        first, last = as_date(start, "start"), as_date(end, "end")
        return self.where(lambda m: first <= m.local_date <= last, f"local_date={first}..{last}")

    def sent_between(self, start: datetime, end: datetime) -> SentMessages:
        """Sends with ``start <= sent_at < end`` (aware instants)."""
        for value in (start, end):
            if value.tzinfo is None or value.utcoffset() is None:
                raise ValueError(f"{value.isoformat()} is naive; pass an aware datetime")
        return self.where(
            lambda m: start <= m.sent_at < end, f"sent_at={start.isoformat()}..{end.isoformat()}"
        )

    # -- reading ------------------------------------------------------------------------------

    @property
    def messages(self) -> list[SentMessage]:
        return [m for m in self._source() if all(f(m) for f in self._filters)]

    def __iter__(self) -> Iterator[SentMessage]:
        return iter(self.messages)

    def __len__(self) -> int:
        return len(self.messages)

    @overload
    def __getitem__(self, index: int) -> SentMessage: ...

    @overload
    def __getitem__(self, index: slice) -> list[SentMessage]: ...

    def __getitem__(self, index: int | slice) -> SentMessage | list[SentMessage]:
        return self.messages[index]

    def __bool__(self) -> bool:
        return bool(self.messages)

    def one(self) -> SentMessage:
        """The only message of this view; an AssertionError listing them otherwise."""
        found = self.messages
        if len(found) != 1:
            raise AssertionError(
                f"expected exactly one message for {self.label}, found {len(found)}:\n{self.table(found)}"
            )
        return found[0]

    def local_dates(self) -> list[date]:
        return [m.local_date for m in self.messages]

    def local_times(self) -> list[str]:
        return [m.local_time for m in self.messages]

    def by_local_date(self) -> dict[date, list[SentMessage]]:
        grouped: dict[date, list[SentMessage]] = {}
        for message in self.messages:
            grouped.setdefault(message.local_date, []).append(message)
        return grouped

    @property
    def label(self) -> str:
        return ", ".join(self._labels) or "all messages"

    def table(self, messages: Iterable[SentMessage] | None = None) -> str:
        rows = [f"  {m.describe()}" for m in (self.messages if messages is None else messages)]
        return "\n".join(rows) if rows else "  (none)"

    def __repr__(self) -> str:
        found = self.messages
        return f"<SentMessages {self.label}: {len(found)} message(s)>\n{self.table(found)}"
