"""How ``explain`` words each rule's verdict: one line (rule, verdict, detail, data) per rule.

Pure presentation of :mod:`planner.core.checks` verdicts the planner's own functions reached; nothing
here decides anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from planner.core.cadence import Cadence, Occurrence
from planner.core.checks import Decision, Verdict
from planner.core.learned_time import Choice, recorded_basis
from planner.core.localtime import UTC, hhmm, to_local
from planner.core.policy import Cap
from planner.core.status import DeliveryStatus
from planner.core.wording import duration


@dataclass(frozen=True)
class RuleLine:
    rule: str
    verdict: str  # pass | fail | adjusted | deferred | bypassed | info
    detail: str
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "verdict": self.verdict, "detail": self.detail, "data": self.data}


def local_text(instant: datetime, tz: str) -> str:
    local = to_local(instant, tz)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()} ({instant.astimezone(UTC):%H:%MZ})"


def cadence_line(cadence: Cadence, day: date, occurrence: Occurrence | None, tz: str) -> RuleLine:
    data: dict[str, Any] = {
        "wall_time": hhmm(cadence.wall_time),
        "wall_times": [hhmm(t) for t in cadence.wall_times],
        "days": cadence.days_text(),
        "rrule": None if cadence.rule is None else cadence.rule.text,
        "local_date": day.isoformat(),
    }
    if not cadence.matches(day):
        return RuleLine("cadence", "fail", cadence.why_not(day), data)
    if occurrence is None:
        return RuleLine("cadence", "fail", f"{day.isoformat()} does not exist in {tz}", data)
    data["occurrence_at"] = occurrence.instant.isoformat()
    if cadence.learned is not None:
        window = cadence.learned
        detail = (
            f"one send between {hhmm(window.start)} and {hhmm(window.end)} local (default "
            f"{hhmm(window.default)}), its time decided when the window opens ({cadence})"
        )
        return RuleLine("cadence", "pass", detail, data)
    return RuleLine("cadence", "pass", f"fires at {hhmm(cadence.wall_time)} local ({cadence})", data)


def learned_line(choice: Choice, recorded: dict[str, Any] | None) -> RuleLine:
    """A learned send time's choice for the date: as recorded on the delivery, else as it would be."""
    left_out = [
        f"{len(slots)} slot(s) {why} left out"
        for slots, why in ((choice.quiet_slots, "in quiet hours"), (choice.past_slots, "already past"))
        if slots
    ]
    now = choice.note() + (f"; {', '.join(left_out)}" if left_out else "")
    if recorded is None:
        return RuleLine("learned_time", "info", now, {"basis": choice.basis})
    basis = recorded_basis(recorded)
    then = f"decided {recorded['chosen']} ({recorded['basis']}: {basis}), recorded on the delivery"
    if recorded["chosen"] != hhmm(choice.wall_time):
        then += f"; the statistic now says {hhmm(choice.wall_time)}, which never moves a decided date"
    return RuleLine("learned_time", "info", then, {"basis": recorded["basis"]})


def dst_line(occurrence: Occurrence, tz: str) -> RuleLine:
    local = to_local(occurrence.instant, tz)
    data: dict[str, Any] = {"adjustment": occurrence.adjustment}
    wall = hhmm(occurrence.wall_time)
    if occurrence.adjustment == "gap":
        minutes = int(occurrence.shift.total_seconds() // 60)
        data["shift_minutes"] = minutes
        moved = f"shifted {minutes} min to {hhmm(local)} {local.tzname()}"
        detail = f"{wall} does not exist that day (DST gap): {moved}"
        return RuleLine("dst", "adjusted", detail, data)
    if occurrence.adjustment == "overlap":
        detail = f"{wall} happens twice (DST overlap): sent once, at the first ({local.tzname()})"
        return RuleLine("dst", "adjusted", detail, data)
    return RuleLine("dst", "pass", f"no DST adjustment: {local_text(occurrence.instant, tz)}", data)


def snooze_line(verdict: Verdict) -> RuleLine:
    if not verdict.failed:
        return RuleLine("snooze", "pass", "not snoozed")
    until = verdict.detail["snooze_until"]
    return RuleLine("snooze", "fail", f"snoozed until {until}: recorded skipped", {"snooze_until": until})


def digest_line(bound: int, waiting: int, row: Any) -> RuleLine:
    """A digest lists the events bound when its send was claimed; before that, those waiting."""
    data = {"bound": bound, "waiting": waiting}
    if row is not None and row.reason == "empty_digest":
        return RuleLine("digest", "fail", "no events since the last digest: recorded skipped", data)
    if bound:
        return RuleLine("digest", "pass", f"lists the {bound} event(s) bound at its send's claim", data)
    detail = f"{waiting} event(s) waiting; bound when the send is claimed (none: skipped)"
    return RuleLine("digest", "pass", detail, data)


def address_line(verdict: Verdict, channel: str) -> RuleLine:
    """The channel rule, shown as the opt-out check."""
    if verdict.reason == "opted_out":
        scope = verdict.detail.get("scope", f"channel:{channel}")
        what = channel if scope.startswith("channel:") else f"{scope.removeprefix('kind:')} on {channel}"
        return RuleLine("opt_out", "fail", f"opted out of {what}", {"scope": scope})
    if verdict.reason == "invalid_channel":
        invalid = verdict.detail["invalid"]
        return RuleLine(
            "opt_out", "fail", f"{channel} address marked invalid: {invalid}", {"invalid": invalid}
        )
    if verdict.reason == "no_address":
        return RuleLine("opt_out", "fail", f"no {channel} address on file")
    return RuleLine("opt_out", "pass", f"not opted out; {channel} address on file")


def engagement_line(verdict: Verdict, engaged_at: datetime | None, interval_days: int) -> RuleLine:
    detail = verdict.detail
    since = detail["days_since_last_send"]
    data = {"last_engaged_at": engaged_at.isoformat() if engaged_at else None, **detail}
    basis = "engagement" if engaged_at else "subscription start (no engagement yet)"
    last = "nothing sent before" if since is None else f"last send {since} day(s) before"
    text = (
        f"inactive {detail['inactive_days']} day(s) since {basis}: tier every {interval_days} day(s); {last}"
    )
    if verdict.failed:
        return RuleLine("engagement", "fail", text + " → skipped (engagement_backoff)", data)
    return RuleLine("engagement", "pass", text, data)


def quiet_line(kind: str, verdict: Verdict, window: str, instant: datetime, tz: str) -> RuleLine:
    if verdict.outcome == "bypassed":
        return RuleLine("quiet_hours", "bypassed", f"{kind} is a critical kind")
    deferred = verdict.outcome == "deferred"
    data = {"window": window, "deferred": deferred, "send_at": verdict.at.isoformat()}
    if deferred:
        text = f"{hhmm(to_local(instant, tz))} is inside {window}: deferred to {local_text(verdict.at, tz)}"
        return RuleLine("quiet_hours", "deferred", text, data)
    return RuleLine("quiet_hours", "pass", f"outside quiet hours ({window})", data)


def lateness_line(verdict: Verdict, row: Any, limit: timedelta) -> RuleLine:
    data: dict[str, Any] = {"max_lateness_seconds": int(limit.total_seconds())}
    if row is not None and row.status == DeliveryStatus.missed.value:
        late = row.created_at - row.scheduled_at
        data["late_by_seconds"] = int(late.total_seconds())
        text = f"planned {duration(late)} after its time (more than {duration(limit)}): missed"
        return RuleLine("lateness", "fail", text, data)
    if row is not None and row.sent_at is not None:
        late = row.sent_at - row.scheduled_at
        data["sent_after_seconds"] = round(late.total_seconds(), 3)
        return RuleLine("lateness", "pass", f"sent {duration(late)} after its scheduled time", data)
    if row is None and verdict.failed:
        return RuleLine(
            "lateness", "fail", f"not planned and now more than {duration(limit)} past its time", data
        )
    return RuleLine("lateness", "pass", f"within the maximum lateness ({duration(limit)})", data)


def cap_line(kind: str, verdict: Verdict, cap: Cap, counted: Sequence[datetime], row: Any) -> RuleLine:
    if verdict.outcome == "bypassed":
        return RuleLine("cap", "bypassed", f"{kind} is a critical kind")
    at = verdict.at
    in_window = sum(1 for t in counted if at - cap.window < t <= at)
    data = {"cap": cap.text, "counted_in_window": in_window}
    if row is not None and row.reason == "frequency_cap":
        return RuleLine("cap", "fail", f"suppressed: the cap {cap.text} was full when planned", data)
    if not verdict.failed:
        return RuleLine(
            "cap", "pass", f"{in_window} other send(s) counted in the window; cap {cap.text}", data
        )
    return RuleLine("cap", "fail", f"{in_window} other send(s) counted: cap {cap.text} is full", data)


def dedup_line(
    key: str, row: Any, planned_from: date | None, planned_at: datetime | None, day: date
) -> RuleLine:
    if row is not None:
        detail = f"delivery {row.id} ({key}): {row.status}" + (f" ({row.reason})" if row.reason else "")
        return RuleLine(
            "dedup", "info", detail, {"dedup_key": key, "delivery_id": row.id, "status": row.status}
        )
    if planned_from is not None and day >= planned_from:
        when = planned_at.isoformat() if planned_at else "?"
        return RuleLine(
            "dedup", "info", f"not planned yet: the planner reaches {key} at {when}", {"dedup_key": key}
        )
    return RuleLine("dedup", "info", f"no delivery for {key}", {"dedup_key": key})


def attempts_line(row: Any) -> RuleLine:
    detail = f"{row.attempts} attempt(s)"
    if row.last_error:
        detail += f"; last error: {row.last_error}"
    verdict = "fail" if row.status == DeliveryStatus.dead.value else "info"
    return RuleLine("attempts", verdict, detail, {"attempts": row.attempts, "last_error": row.last_error})


def outcome(lines: Sequence[RuleLine], row: Any, decision: Decision | None) -> str:
    """What happened (a delivery row), or else what the planner's chain would decide."""
    if row is not None:
        return f"{row.status}" + (f" ({row.reason})" if row.reason else "")
    for rule in ("subscription", "cadence"):
        if any(line.rule == rule and line.verdict == "fail" for line in lines):
            return f"no send: {rule}"
    assert decision is not None  # an occurrence exists, so the chain ran
    if not decision.to_send:
        stopped = decision.verdicts[-1]
        why = stopped.reason or ""
        if stopped.rule == "snooze":
            why += f" until {stopped.detail['snooze_until']}"
        return f"would be {decision.status.value}: {why}"
    return "would be sent" + (
        " (deferred by quiet hours)" if decision.reason == "quiet_hours_deferred" else ""
    )


def fallback_note(shown: dict[str, Any]) -> str | None:
    """A delivery's fallback link in words, either way ("fallback for delivery 123, because bounced")."""
    link = shown.get("fallback_for")
    if link is not None:
        return f"fallback for delivery {link['delivery_id']}, because {link['because']}"
    link = shown.get("fallback_delivery")
    if link is not None:
        return f"fell back to {link['channel']}: delivery {link['delivery_id']}, because {link['because']}"
    return None


def fallback_line(rule: dict[str, Any] | None, shown: dict[str, Any] | None) -> RuleLine | None:
    """The subscription's fallback rule, and what became of it for this occurrence's delivery."""
    if rule is None:
        return None
    conditions = ", ".join(rule["on"])
    detail = f"{rule['channel']} if {conditions} (reported within {rule['within']} of the send)"
    data: dict[str, Any] = {"rule": rule}
    note = None if shown is None else fallback_note(shown)
    if note is not None:
        data["fallback_delivery"] = shown["fallback_delivery"] if shown else None
        return RuleLine("fallback", "info", f"{note}; rule: {detail}", data)
    return RuleLine("fallback", "info", f"rule: {detail}", data)
