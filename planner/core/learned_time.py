"""A learned send time: each date's send goes at the half hour the recipient engages most.

A subscription says ``"at": {"auto": {"between": ["07:00", "21:00"], "default": "09:00"}}``: one
send on each of its dates, at the start of the half-hour slot of the window in which the recipient's
recency-weighted engagement (:mod:`planner.core.engagement_slots`, in LOCAL wall time) is highest.

* **The window** is ``[start, end)`` in local wall time, both on the half hour, ``start`` before
  ``end`` (it does not cross midnight) and at least one slot long; the send goes at a slot's start,
  so the last slot starts half an hour before ``end``. ``default`` is any wall time inside it.
* **When it is decided**: once per date, by the planner run that plans the date, no later than the
  window's start (the cadence fires there: :class:`~planner.core.cadence.Cadence` with
  ``learned``). The choice and its basis are recorded on the delivery; engagement recorded after
  that never moves or repeats the date's send.
* **The statistic** is read as of the window's start on that date. Slots that cannot be chosen are
  left out first: those starting inside the recipient's quiet hours (the window is clipped, unless
  the kind is critical and bypasses them) and, when the date is planned late, those already past.
* **Too little history**: when the weights of the slots left total under :data:`THRESHOLD` (three
  engagements just now, four spread over the last week, six a fortnight ago), the default applies;
  when it has already passed (a subscription saved mid-window, a planner that was down), the first
  slot still ahead, so the send stays inside the window the subscription asked for.
* **Ties**: the higher weight; then the slot nearer the default; then the earlier slot.

Everything after the choice is the rule chain's, as for a fixed time: the DST policy resolves the
chosen wall time, then quiet hours (the default may still be deferred), lateness and caps.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

from planner.core.engagement_slots import (
    SLOT_MINUTES,
    EngagementSlots,
    slot_of,
    slot_start,
    slot_text,
)
from planner.core.localtime import hhmm, parse_wall_time
from planner.core.quiet_hours import QuietHours
from planner.errors import InvalidInput

#: Recency-weighted engagement a window needs before the learned slot replaces the default.
THRESHOLD = 3.0
AUTO_KEYS = frozenset({"between", "default"})
_SHAPE = '{"auto": {"between": ["07:00", "21:00"], "default": "09:00"}}'


@dataclass(frozen=True)
class LearnedTime:
    """A window ``[start, end)`` of local wall time on the half hour, and the default inside it."""

    start: time
    end: time
    default: time
    #: 'HH:MM-HH:MM' (what a delivery records); worked out once per window.
    window_text: str = field(init=False, repr=False, compare=False)
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "window_text", f"{hhmm(self.start)}-{hhmm(self.end)}")
        object.__setattr__(self, "_hash", hash((self.start, self.end, self.default)))
        field = "at.auto.between"
        window = [hhmm(self.start), hhmm(self.end)]
        if self.end <= self.start:
            raise InvalidInput(field, window, "a start before the end (a window does not cross midnight)")
        if _minutes(self.end) - _minutes(self.start) < SLOT_MINUTES:
            raise InvalidInput(field, window, f"a window of at least one {SLOT_MINUTES}-minute slot")
        if any(t.minute % SLOT_MINUTES or t.second for t in (self.start, self.end)):
            raise InvalidInput(field, window, "times on the half hour (HH:00 or HH:30)")
        if not self.start <= self.default < self.end:
            raise InvalidInput(
                "at.auto.default", hhmm(self.default), f"a wall time inside the window {self.window_text}"
            )

    def __hash__(self) -> int:
        # Worked out once: each learned occurrence of a run looks its window up in a cache.
        return self._hash

    @classmethod
    def parse(cls, value: object) -> LearnedTime:
        """Validate the ``"at"`` object (``{"auto": {...}}``); errors name ``at.auto.<field>``."""
        if not isinstance(value, dict) or set(value) != {"auto"}:
            raise InvalidInput("at", value, f"a wall time 'HH:MM', a list of them, or {_SHAPE}")
        auto = value["auto"]
        if not isinstance(auto, dict):
            raise InvalidInput("at.auto", auto, f"an object like {_SHAPE[9:-1]}")
        unknown = sorted(set(auto) - AUTO_KEYS)
        if unknown:
            raise InvalidInput(f"at.auto.{unknown[0]}", auto[unknown[0]], "only the fields between, default")
        between = auto.get("between")
        if not isinstance(between, list) or len(between) != 2:
            raise InvalidInput("at.auto.between", between, 'two wall times, e.g. ["07:00", "21:00"]')
        start, end = (parse_wall_time(t, "at.auto.between") for t in between)
        if "default" not in auto:
            expected = "the wall time used without enough history, e.g. '09:00'"
            raise InvalidInput("at.auto.default", None, expected)
        return cls(start, end, parse_wall_time(auto["default"], "at.auto.default"))

    @property
    def slots(self) -> range:
        """The slots a send may start in."""
        return range(slot_of(self.start), slot_of(self.end))

    @property
    def last_slot(self) -> time:
        return slot_start(self.slots[-1])

    def describe(self) -> str:
        """'a learned time between 07:00 and 21:00 (default 09:00)' (what a schedule's words say)."""
        window = f"between {hhmm(self.start)} and {hhmm(self.end)}"
        return f"a learned time {window} (default {hhmm(self.default)})"

    def document(self) -> dict[str, Any]:
        """The ``"at"`` value this was parsed from (what an export or a GET shows)."""
        return {"auto": {"between": [hhmm(self.start), hhmm(self.end)], "default": hhmm(self.default)}}


def _minutes(wall: time) -> int:
    return wall.hour * 60 + wall.minute


# One per learned occurrence (a run decides thousands): slotted and not ``frozen``, as the records of
# planner.core.checks. Nothing assigns to it after construction.
@dataclass(slots=True)
class Choice:
    """Where one date's send goes in the window, and why: the wall time, and what the delivery
    records of it (its first timeline entry's ``learned_time``), which explain and simulate word as
    they word a recorded choice."""

    wall_time: time
    #: ``window`` 'HH:MM-HH:MM'; ``chosen`` 'HH:MM'; ``basis`` "learned" (the leading slot) or
    #: "default"; ``window_weight`` and ``window_events`` of the slots that could be chosen; with
    #: "learned", the chosen slot's ``weight`` and ``events``; ``why`` a default other than too little
    #: history (worded from ``window_weight`` when read: the usual reason); ``quiet_slots`` and
    #: ``past_slots`` left out. Shared by the delivery's detail: never changed after construction.
    record: dict[str, Any]

    @property
    def basis(self) -> str:
        return str(self.record["basis"])

    @property
    def learned(self) -> bool:
        return self.basis == "learned"

    @property
    def why(self) -> str:
        """Why the send goes at this time, in words."""
        return recorded_basis(self.record)

    @property
    def quiet_slots(self) -> list[str]:
        return list(self.record.get("quiet_slots", ()))

    @property
    def past_slots(self) -> list[str]:
        return list(self.record.get("past_slots", ()))

    def note(self) -> str:
        """One line for explain and simulate."""
        return f"{self.basis} time {self.record['chosen']}: {self.why}"


def recorded_basis(recorded: Mapping[str, Any]) -> str:
    """Why a delivery's recorded choice (:attr:`Choice.record`) is at its time, in words."""
    if recorded["basis"] != "learned":
        return str(recorded.get("why") or too_little(recorded["window_weight"]))
    share = recorded["weight"] / recorded["window_weight"] if recorded["window_weight"] else 0.0
    return (
        f"{share:.0%} of the recent engagement in the window ({recorded['weight']:.1f} of "
        f"{recorded['window_weight']:.1f}, {recorded['events']} event(s))"
    )


@functools.lru_cache(maxsize=1024)
def _slot_texts(slots: tuple[int, ...]) -> list[str]:
    # Shared by the details of every choice that left out these slots: never changed after this.
    return [slot_text(s) for s in slots]


def too_little(weight: float) -> str:
    return f"too little history (recent engagement {weight:.1f} in the window, under {THRESHOLD:g})"


def choose(
    learned: LearnedTime,
    slots: EngagementSlots,
    at: datetime,
    quiet: QuietHours | None,
    past: Collection[int] = (),
    default_passed: bool = False,
) -> Choice:
    """The date's send time: the leading slot of the window as of ``at`` (the window's start),
    among those outside ``quiet`` (None: the kind bypasses quiet hours) and not in ``past``;
    ``default_passed``: the default time was behind when the date was planned."""
    excluded, candidates, open_set = _open_slots(learned, quiet)
    skipped: tuple[int, ...] = ()
    if past:
        skipped = tuple(s for s in candidates if s in past)
        candidates = tuple(s for s in candidates if s not in past)
        open_set = frozenset(candidates)
    if not candidates:
        why = "every slot of the window is inside quiet hours" if excluded else "the window had passed"
        return _choice(learned, learned.default, "default", 0.0, 0, excluded, skipped, why=why)
    # One pass over the recipient's few engaged slots: the total, and the leader (the highest weight,
    # then the nearest the default, then the earliest: _nearer).
    total = 0.0
    events: float = 0  # the cells hold floats and ints alike
    best = -1
    best_weight = 0.0
    cells = slots.cells  # slot, events, weight; slot, events, weight; ...
    for i in range(0, len(cells), 3):
        if cells[i] not in open_set:
            continue
        weight = cells[i + 2]
        total += weight
        events += cells[i + 1]
        if best < 0 or weight > best_weight:
            best, best_weight = i, weight
        elif weight == best_weight and _nearer(cells[i], cells[best], learned):
            best = i
    factor = slots.factor(at) if events else 1.0
    total *= factor
    if total < THRESHOLD:
        if not default_passed:
            return _choice(learned, learned.default, "default", total, events, excluded, skipped)
        passed = f"the default {hhmm(learned.default)} had passed when planned"
        why = f"{passed}: the first half hour ahead; {too_little(total)}"
        ahead = slot_start(candidates[0])
        return _choice(learned, ahead, "default", total, events, excluded, skipped, why=why)
    chosen = (best_weight * factor, cells[best + 1])
    return _choice(learned, slot_start(int(cells[best])), "learned", total, events, excluded, skipped, chosen)


def _choice(
    learned: LearnedTime,
    wall_time: time,
    basis: str,
    window_weight: float,
    window_events: float,
    quiet_slots: tuple[int, ...],
    past_slots: tuple[int, ...],
    chosen: tuple[float, float] | None = None,
    why: str = "",
) -> Choice:
    """The choice and its record: ``chosen`` the leading slot's weight and events (a learned
    basis); ``why`` a default other than too little history."""
    record: dict[str, Any] = {
        "window": learned.window_text,
        "chosen": _text_of(wall_time),
        "basis": basis,
        "window_weight": _thousandths(window_weight),
        "window_events": int(window_events),
    }
    if chosen is not None:  # the numbers are the basis
        record["weight"] = _thousandths(chosen[0])
        record["events"] = int(chosen[1])
    elif why:  # without it: too little history, worded from window_weight when read
        record["why"] = why
    if quiet_slots:
        record["quiet_slots"] = _slot_texts(quiet_slots)
    if past_slots:
        record["past_slots"] = _slot_texts(past_slots)
    return Choice(wall_time, record)


def _thousandths(weight: float) -> float:
    """A weight to 3 decimals, as recorded (``round(weight, 3)`` formats it as decimal digits first:
    a run records thousands of these)."""
    return round(weight * 1000) / 1000


def _nearer(slot: float, other: float, learned: LearnedTime) -> bool:
    """Between two slots of equal weight, whether ``slot`` is the one chosen: the nearer the
    default, then the earlier."""
    default = _minutes(learned.default)
    return (abs(slot * SLOT_MINUTES - default), slot) < (abs(other * SLOT_MINUTES - default), other)


_TEXTS: dict[time, str] = {}


def _text_of(wall: time) -> str:
    """'HH:MM' of a wall time, remembered (a run records thousands of choices of a few times)."""
    text = _TEXTS.get(wall)
    if text is None:
        text = _TEXTS[wall] = hhmm(wall)
    return text


@functools.lru_cache(maxsize=4096)
def _open_slots(
    learned: LearnedTime, quiet: QuietHours | None
) -> tuple[tuple[int, ...], tuple[int, ...], frozenset[int]]:
    """The window's slots inside ``quiet``, and those outside it in order and as a set."""
    excluded = quiet_slots(learned, quiet)
    kept = tuple(s for s in learned.slots if s not in excluded)
    return excluded, kept, frozenset(kept)


@functools.lru_cache(maxsize=4096)
def quiet_slots(learned: LearnedTime, quiet: QuietHours | None) -> tuple[int, ...]:
    """The window's slots whose start is inside ``quiet``: a send there would be deferred, so the
    window is clipped instead. Recipients share a few windows and quiet hours: worked out once."""
    if quiet is None:
        return ()
    return tuple(s for s in learned.slots if quiet.contains(slot_start(s)))


def histogram(learned: LearnedTime, slots: EngagementSlots, at: datetime) -> list[dict[str, Any]]:
    """The window's slots with their weights as of ``at`` and events (explain and the dashboard)."""
    weights: Mapping[int, float] = slots.weights_at(at)
    return [
        {
            "slot": slot_text(s),
            "weight": _thousandths(weights.get(s, 0.0)),
            "events": slots.slots[s].events if s in slots.slots else 0,
        }
        for s in learned.slots
    ]
