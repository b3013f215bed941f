"""A recipient's engagement by local time of day: the statistic a learned send time reads.

Every engagement (an open, a click, a reply) falls in one of 48 half-hour slots of the recipient's
LOCAL wall time (00:00-00:30 ... 23:30-24:00), read in the recipient's zone at the instant it
happened: a reader at 19:40 EST is still at 19:40 when New York moves to EDT, in the same slot, so
a DST change does not move a learned hour. A wall time repeated by an overlap is the same slot both
times.

Each slot holds how many events it has seen and a recency weight: an event weighs 1 when it
happens and half as much every :data:`HALF_LIFE` after (exponential decay). A weight is thus "events,
the recent ones counting more": a habit that changed two weeks ago outweighs the old one within
about a week, and what happened months ago no longer counts.

The weights are kept as of one instant (``as_of``, the latest event seen). Adding an event later
than ``as_of`` first decays every slot to its instant; an earlier one (an import of old history)
adds its weight decayed to ``as_of``. Either way the result does not depend on the order the
events arrive in, so a repeated or reordered import gives the same statistic. Reading the weights
at another instant multiplies every slot by the same factor: which slot leads never depends on when
it is read, only the total (which :mod:`planner.core.learned_time` compares with its threshold).

The store keeps one of these per recipient (:mod:`planner.store.engagement_writes` updates it in
the transaction that records new engagement) in the JSON form of :meth:`EngagementSlots.to_json`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, NamedTuple

SLOT_MINUTES = 30
SLOTS_A_DAY = 24 * 60 // SLOT_MINUTES
HALF_LIFE = timedelta(days=14)
#: Weights are stored to this many decimals; equal stored weights are a tie.
PLACES = 6

_HALF_LIFE_SECONDS = HALF_LIFE.total_seconds()


def slot_of(wall: time) -> int:
    """The half-hour slot (0 for 00:00-00:30 ... 47 for 23:30-24:00) a local wall time falls in."""
    return (wall.hour * 60 + wall.minute) // SLOT_MINUTES


def slot_start(slot: int) -> time:
    """The wall time a slot starts at: 39 → 19:30."""
    minutes = slot * SLOT_MINUTES
    return time(minutes // 60, minutes % 60)


def slot_text(slot: int) -> str:
    return slot_start(slot).strftime("%H:%M")


def decay(elapsed: timedelta) -> float:
    """What a weight becomes after ``elapsed`` (more than 1 for a negative ``elapsed``)."""
    return float(0.5 ** (elapsed.total_seconds() / _HALF_LIFE_SECONDS))


class SlotCount(NamedTuple):
    """One slot: events seen, and their recency weight as of the histogram's ``as_of``."""

    events: int
    weight: float


# Read for every learned recipient of a run: slotted and not ``frozen`` (see planner.core.checks).
# Nothing assigns to it after construction.
@dataclass(slots=True)
class EngagementSlots:
    """A recipient's engagement per local half-hour slot, weighted by recency as of ``as_of``."""

    as_of: datetime | None = None
    #: Per engaged slot, in slot order, three numbers: the slot, its events, its weight as of
    #: ``as_of``. Flat, never changed after construction: a planner run reads thousands of these,
    #: and one list is one object to build (and for the garbage collector to visit), not a dozen.
    cells: Sequence[float] = ()

    @property
    def slots(self) -> dict[int, SlotCount]:
        """The engaged slots, by slot."""
        c = self.cells
        return {int(c[i]): SlotCount(int(c[i + 1]), float(c[i + 2])) for i in range(0, len(c), 3)}

    @property
    def events(self) -> int:
        return int(sum(self.cells[1::3]))

    def factor(self, at: datetime) -> float:
        """The factor turning the stored weights into weights as of ``at``."""
        return 1.0 if self.as_of is None else decay(at - self.as_of)

    def weights_at(self, at: datetime) -> dict[int, float]:
        """Every engaged slot's weight as of ``at``."""
        factor = self.factor(at)
        return {slot: count.weight * factor for slot, count in self.slots.items()}

    def with_events(self, events: Iterable[tuple[datetime, time]]) -> EngagementSlots:
        """These slots with more events, each an instant and the local wall time it was there."""
        listed = sorted(events)
        if not listed:
            return self
        as_of = max(self.as_of or listed[-1][0], listed[-1][0])
        factor = self.factor(as_of)
        merged = {slot: [count.events, count.weight * factor] for slot, count in self.slots.items()}
        for instant, wall in listed:
            entry = merged.setdefault(slot_of(wall), [0, 0.0])
            entry[0] += 1
            entry[1] += decay(as_of - instant)
        cells: list[float] = []
        for slot, (n, w) in sorted(merged.items()):
            cells += [slot, int(n), round(w, PLACES)]
        return EngagementSlots(as_of, cells)

    def to_json(self) -> dict[str, Any] | None:
        """The stored form: ``{"as_of": ISO instant, "slots": [slot, events, weight, ...]}``, each
        slot by its number (39 is 19:30-20:00): a planner run reads thousands, as they are."""
        if self.as_of is None:
            return None
        return {"as_of": self.as_of.isoformat(), "slots": list(self.cells)}

    @classmethod
    def from_json(cls, data: Any) -> EngagementSlots:
        """The stored form back; None (no engagement yet) is an empty histogram."""
        if data is None:
            return NO_ENGAGEMENT
        cells = data["slots"]
        if cells and isinstance(cells[0], str):  # written by a version before migration 0026
            cells = numbered(cells)
        return cls(datetime.fromisoformat(data["as_of"]), cells)


def numbered(cells: Sequence[Any]) -> list[Any]:
    """Cells whose slots are written 'HH:MM' (the stored form before migration 0026), numbered."""
    return [
        (int(value[:2]) * 60 + int(value[3:5])) // SLOT_MINUTES if i % 3 == 0 else value
        for i, value in enumerate(cells)
    ]


NO_ENGAGEMENT = EngagementSlots()
