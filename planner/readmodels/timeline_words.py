"""A timeline entry's detail in words, for the dashboard's delivery page and ``deliveries show``.

The detail is stored as JSON for machines (``--json`` and the API give it as is); a person reads
'engagement tier every 3 days: inactive 12 days, last send 2 days before', never
``engagement={'tier': ...}``. Known keys have their own sentence; any other key is worded from its
name and value (:func:`planner.core.wording.value_text`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from planner.core.learned_time import recorded_basis
from planner.core.localtime import UTC
from planner.core.wording import duration, humanise, value_text


def instant_words(value: object) -> str:
    """An ISO instant as '2026-03-07 15:00Z' (UTC); anything else in words."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return value
        if parsed.tzinfo is not None:
            return f"{parsed.astimezone(UTC):%Y-%m-%d %H:%M:%SZ}".replace(":00Z", "Z")
    return value_text(value)


def _days(count: object) -> str:
    return f"{count} day" if count == 1 else f"{count} days"


def _engagement(value: Any, _detail: Mapping[str, Any]) -> str:
    if not isinstance(value, Mapping):
        return f"engagement {value_text(value)}"
    since = value.get("days_since_last_send")
    last = "nothing sent before" if since is None else f"last send {_days(since)} before"
    return f"engagement tier {value.get('tier')}: inactive {_days(value.get('inactive_days'))}, {last}"


def _quiet_hours(value: Any, _detail: Mapping[str, Any]) -> str:
    if not isinstance(value, Mapping):
        return f"quiet hours {value_text(value)}"
    window = value.get("window")
    start, end = instant_words(value.get("deferred_from")), instant_words(value.get("deferred_to"))
    return f"quiet hours {window}: deferred from {start} to {end}"


def _learned_time(value: Any, _detail: Mapping[str, Any]) -> str:
    if not isinstance(value, Mapping) or "basis" not in value:
        return f"learned time {value_text(value)}"
    chosen = f"{value['basis']} time {value.get('chosen')} in the window {value.get('window')}"
    words = f"{chosen}: {recorded_basis(value)}"
    left_out = [
        f"{name} {', '.join(value[key])}"
        for key, name in (("quiet_slots", "in quiet hours"), ("past_slots", "already past"))
        if value.get(key)
    ]
    return words + (f" (half hours left out: {'; '.join(left_out)})" if left_out else "")


def _dst(value: Any, detail: Mapping[str, Any]) -> str:
    if value == "gap":
        shift = detail.get("dst_shift_minutes")
        return "DST gap: the wall time does not exist that day" + (f", shifted {shift} min" if shift else "")
    if value == "overlap":
        return "DST overlap: the wall time happens twice, sent at the first"
    return f"DST {value_text(value)}"


def _scope(value: Any, _detail: Mapping[str, Any]) -> str:
    text = str(value)
    if text.startswith("kind:"):
        return f"opted out of the kind {text.removeprefix('kind:')}"
    return f"opted out of {text.removeprefix('channel:')}"


def _attempts(value: Any, _detail: Mapping[str, Any]) -> str:
    known = {"reset": "attempts reset", "keep": "attempts kept"}
    return known.get(str(value), f"attempts {value_text(value)}")


def _phrase(template: str, instant: bool = False) -> Callable[[Any, Mapping[str, Any]], str]:
    return lambda value, _detail: template.format(instant_words(value) if instant else value_text(value))


_KNOWN: dict[str, Callable[[Any, Mapping[str, Any]], str]] = {
    "source": lambda value, _detail: "ad hoc" if value == "adhoc" else f"source {value_text(value)}",
    "requested_at": _phrase("requested for {}", instant=True),
    "occurrence_at": _phrase("occurrence {}", instant=True),
    "wall_time": _phrase("wall time {}"),
    "dst": _dst,
    "engagement": _engagement,
    "quiet_hours": _quiet_hours,
    "learned_time": _learned_time,
    "critical": lambda value, _detail: "a critical kind" if value else "not a critical kind",
    "cap": _phrase("frequency cap {}"),
    "snooze_until": _phrase("snoozed until {}"),
    "late_by_seconds": lambda value, _detail: f"late by {duration(float(value))}",
    "scope": _scope,
    "invalid": _phrase("address marked invalid: {}"),
    "zone": _phrase("zone {}"),
    "window": _phrase("quiet hours {}"),
    "until": _phrase("until {}", instant=True),
    "pause": _phrase("paused ({})"),
    "error": _phrase("error: {}"),
    "attempt": _phrase("attempt {}"),
    "attempt_started_at": _phrase("attempt started {}", instant=True),
    "provider_message_id": _phrase("provider message id {}"),
    "job_id": _phrase("job {}"),
    "next_attempt_at": _phrase("next attempt {}", instant=True),
    "previous_status": _phrase("was {}"),
    "previous_reason": _phrase("reason was {}"),
    "previous_attempts": _phrase("after {} attempt(s)"),
    "previous_job_id": _phrase("previous job {}"),
    "attempts": _attempts,
}
#: Worded by another key's sentence.
_FOLDED = {"dst_shift_minutes"}


def detail_words(detail: Mapping[str, Any] | None, leave_out: tuple[str, ...] = ()) -> str:
    """The entry's detail as sentences joined by '; ' (empty for none); ``leave_out`` keys (the
    dashboard shows ``actor`` in a column of its own) are not worded."""
    words = []
    detail = detail or {}
    engagement = detail.get("engagement")
    for key, value in detail.items():
        if key in leave_out or key in _FOLDED or (value is None and key.startswith("previous_")):
            continue
        if isinstance(engagement, Mapping) and key in engagement and engagement[key] == value:
            continue  # a backoff skip's facts, at the top level too in entries of earlier releases
        known = _KNOWN.get(key)
        if key == "actor":
            words.append(f"by {value_text(value)}")
        elif known is not None:
            words.append(known(value, detail))
        else:
            words.append(f"{humanise(key)} {value_text(value)}")
    return "; ".join(words)
