"""What a recipient would receive over the next days, and why, without touching the database.

``planner simulate`` shows this so that a DST gap, an overlap or a quiet-hours deferral can be
checked before it happens: every adjustment made to a send carries a note saying what and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from rich.table import Table

from planner.core.cadence import Cadence, Occurrence, occurrence_on
from planner.core.localtime import UTC, TzLike, format_offset, get_zone, resolve_detailed, to_local
from planner.core.quiet_hours import QuietHours, apply_quiet_hours
from planner.errors import InvalidInput


@dataclass(frozen=True)
class SubscriptionSpec:
    kind: str
    channel: str
    cadence: Cadence
    quiet_hours: QuietHours


@dataclass(frozen=True)
class SimulatedSend:
    """One send: the cadence fired at ``planned_local`` (for ``local_date``) and goes out at ``send_at``."""

    kind: str
    channel: str
    local_date: date
    planned_local: datetime
    send_at: datetime
    send_local: datetime
    notes: tuple[str, ...]

    @property
    def deferred(self) -> bool:
        return self.send_at != self.planned_local


def simulate(
    tz: TzLike, subscriptions: Sequence[SubscriptionSpec], from_date: date, days: int
) -> list[SimulatedSend]:
    """Every send of ``subscriptions`` for the local dates ``from_date`` .. ``from_date + days - 1``."""
    if not isinstance(days, int) or isinstance(days, bool) or days < 0:
        raise InvalidInput("days", days, "a whole number of days, 0 or more")
    zone = get_zone(tz)
    sends: list[SimulatedSend] = []
    for spec in subscriptions:
        pending: list[str] = []
        for offset in range(days):
            local_date = from_date + timedelta(days=offset)
            occurrence = occurrence_on(spec.cadence, zone, local_date)
            if occurrence is not None:
                sends.append(_send(spec, zone, occurrence, tuple(pending)))
                pending = []
            elif spec.cadence.matches(local_date):
                pending.append(f"{local_date.isoformat()} does not exist in {zone.key}: no send that day")
    return sorted(sends, key=lambda send: (send.send_at, send.kind, send.channel))


def _send(
    spec: SubscriptionSpec, tz: ZoneInfo, occurrence: Occurrence, notes: tuple[str, ...]
) -> SimulatedSend:
    planned = to_local(occurrence.instant, tz)
    wall = _hhmm(spec.cadence.wall_time)
    if occurrence.adjustment == "gap":
        moved = f"{_shift(occurrence.shift)} to {_hhmm(planned)} {planned.tzname()}"
        notes += (f"DST gap: {wall} does not exist, shifted {moved}",)
    elif occurrence.adjustment == "overlap":
        notes += (f"DST overlap: {wall} happens twice, first occurrence ({planned.tzname()}) used",)
    deferral = apply_quiet_hours(spec.quiet_hours, tz, occurrence.instant)
    send_local = to_local(deferral.instant, tz)
    if deferral.deferred:
        notes += (_deferral_note(spec.quiet_hours, tz, planned, send_local),)
    return SimulatedSend(
        kind=spec.kind,
        channel=spec.channel,
        local_date=occurrence.local_date,
        planned_local=planned,
        send_at=deferral.instant,
        send_local=send_local,
        notes=notes,
    )


def _deferral_note(qh: QuietHours, tz: ZoneInfo, planned: datetime, send_local: datetime) -> str:
    note = f"quiet hours {qh.text()}: deferred from {_hhmm(planned)} to {_hhmm(send_local)}"
    days_later = (send_local.date() - planned.date()).days
    if days_later == 1:
        note += " the next day"
    elif days_later:
        note += f" on {send_local.date().isoformat()}"
    end = resolve_detailed(send_local.date(), qh.end, tz)
    if end is not None and end.adjustment == "gap" and end.instant == send_local:
        note += f" ({_hhmm(qh.end)} does not exist that day, shifted {_shift(end.shift)})"
    return note


def to_json_rows(sends: Sequence[SimulatedSend]) -> list[dict[str, object]]:
    """Plain rows for ``--json``: dates as YYYY-MM-DD, times as ISO 8601 with their offset."""
    return [
        {
            "kind": send.kind,
            "channel": send.channel,
            "local_date": send.local_date.isoformat(),
            "planned_local": send.planned_local.isoformat(),
            "send_local": send.send_local.isoformat(),
            "send_at": send.send_at.astimezone(UTC).isoformat(),
            "deferred": send.deferred,
            "notes": list(send.notes),
        }
        for send in sends
    ]


def render_table(sends: Sequence[SimulatedSend], title: str) -> Table:
    table = Table(title=title)
    for column in ("Local date", "Kind", "Channel", "Local time", "UTC", "Notes"):
        table.add_column(column)
    for send in sends:
        table.add_row(
            send.local_date.isoformat(),
            send.kind,
            send.channel,
            _local_cell(send),
            send.send_at.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ"),
            "\n".join(send.notes),
        )
    return table


def _local_cell(send: SimulatedSend) -> str:
    """'03:30 -04:00 EDT'; the date is added when a deferral moved the send to another day."""
    local = send.send_local
    text = f"{_hhmm(local)} {format_offset(local.utcoffset())}"
    name = local.tzname()
    # Zones without an abbreviation are named by their offset ('+11'), already shown.
    if name and name[0] not in "+-":
        text += f" {name}"
    if local.date() != send.local_date:
        text = f"{local.date().isoformat()} {text}"
    return text


def _hhmm(value: datetime | time) -> str:
    wall = value.time() if isinstance(value, datetime) else value
    return wall.isoformat(timespec="minutes" if not (wall.second or wall.microsecond) else "auto")


def _shift(shift: timedelta) -> str:
    hours, minutes = divmod(int(shift.total_seconds()) // 60, 60)
    return f"+{hours}:{minutes:02d}"
