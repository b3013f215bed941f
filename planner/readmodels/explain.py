"""Why a recipient got, or did not get, a notification on a local date: each rule's verdict.

The rules are the planner's own (:mod:`planner.planning`), replayed for one local date with the
database's current facts: the cadence and its DST adjustment, opt-out and addresses, engagement
backoff, quiet hours, lateness and the frequency cap. When the planner already decided, the
delivery row (dedup key ``sub:<id>:<date>``), its attempts and timeline say what happened.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from planner.app import App
from planner.core import checks
from planner.core.cadence import Cadence, Occurrence, first_occurrence_at_or_after, occurrences_on
from planner.core.localtime import UTC, get_zone, hhmm, local_date_of, to_local
from planner.core.planning import dedup_key_for, occurrence_key
from planner.core.policy import PlanningPolicy
from planner.core.rules import engagement_backoff
from planner.core.status import BACKOFF_COUNTED_STATUSES, CAP_COUNTED_STATUSES, DeliveryStatus
from planner.errors import NotFound
from planner.store.chunks import cadence_of
from planner.store.digests import digest_state
from planner.store.models import Recipient, Subscription
from planner.store.queries import delivery_dict, recipient_by_external_id, timeline
from planner.store.tables import DELIVERIES, ENGAGEMENT, SUBSCRIPTIONS


@dataclass(frozen=True)
class Verdict:
    rule: str
    verdict: str  # pass | fail | adjusted | deferred | bypassed | info
    detail: str
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "verdict": self.verdict, "detail": self.detail, "data": self.data}


def _local_text(instant: datetime, tz: str) -> str:
    local = to_local(instant, tz)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()} ({instant.astimezone(UTC):%H:%MZ})"


@dataclass(frozen=True)
class OccurrenceRules:
    """Every rule's verdict for one occurrence, each evaluated even after another fails (explain shows
    them all), and the chain's decision, which is what the planner would decide."""

    channel: checks.Verdict
    quiet_hours: checks.Verdict
    lateness: checks.Verdict
    cap: checks.Verdict
    decision: checks.Decision


def occurrence_verdicts(
    policy: PlanningPolicy,
    *,
    kind: str,
    channel: str,
    audience: checks.Audience,
    at: datetime,
    now: datetime,
    counted: Sequence[datetime],
    backoff: checks.Verdict,
) -> OccurrenceRules:
    """The rule chain (:mod:`planner.core.checks`) for one occurrence, as ``explain`` presents it."""
    quiet = checks.check_quiet_hours(policy, kind, channel, audience, at)
    return OccurrenceRules(
        channel=checks.check_channel(audience, channel, at, kind),
        quiet_hours=quiet,
        lateness=checks.check_lateness(policy, kind, quiet.at, now),
        cap=checks.check_cap(policy, kind, channel, counted, quiet.at),
        decision=checks.decide(
            policy,
            kind=kind,
            channel=channel,
            audience=audience,
            at=at,
            now=now,
            counted=counted,
            before=(backoff,),
        ),
    )


class _Explainer:
    def __init__(self, session: Session, recipient: Recipient, policy: PlanningPolicy, now: datetime) -> None:
        self.session = session
        self.recipient = recipient
        self.policy = policy
        self.now = now
        self.tz = recipient.timezone

    def subscription(self, sub: Subscription, day: date) -> dict[str, Any]:
        assert sub.id is not None
        cadence = cadence_of(sub)
        verdicts: list[Verdict] = []
        if not sub.active:
            verdicts.append(Verdict("subscription", "fail", "inactive: removed or replaced by an import"))
        day_occurrences = occurrences_on(cadence, self.tz, day)
        # With several wall times a day the first is explained rule by rule; all are listed.
        occurrence = day_occurrences[0] if day_occurrences else None
        verdicts.append(self._cadence(cadence, day, occurrence))
        key = (
            dedup_key_for(sub.id, day) if occurrence is None else occurrence_key(sub.id, cadence, occurrence)
        )
        row = self.session.execute(select(DELIVERIES).where(DELIVERIES.c.dedup_key == key)).first()
        decision = None
        if occurrence is not None:
            verdicts.append(self._dst(cadence, occurrence))
            if sub.snooze_until is not None and day < sub.snooze_until:
                verdicts.append(
                    Verdict(
                        "snooze", "fail", f"snoozed until {sub.snooze_until.isoformat()}: recorded skipped"
                    )
                )
            if sub.digest:
                verdicts.append(self._digest(sub, row))
            backoff, engagement = self._engagement(sub, occurrence)
            rules = occurrence_verdicts(
                self.policy,
                kind=sub.kind,
                channel=sub.channel,
                audience=self.recipient.audience(sub.channel),
                at=occurrence.instant,
                now=self.now,
                counted=self._counted(sub, occurrence.instant, row),
                backoff=backoff,
            )
            verdicts.append(self._address(rules.channel, sub.channel))
            verdicts.append(engagement)
            verdicts.append(self._quiet(sub, occurrence.instant, rules.quiet_hours))
            verdicts.append(self._lateness(sub, rules.lateness, row))
            verdicts.append(self._cap(sub, rules.cap, row))
            decision = rules.decision
        verdicts.append(self._dedup(sub, day, key, row))
        if row is not None:
            verdicts.append(self._attempts(row))
        delivery = None
        if row is not None:
            delivery = delivery_dict(row, self.recipient.external_id)
            delivery["timeline"] = timeline(self.session, row.id, row)
        return {
            "subscription_id": sub.id,
            "kind": sub.kind,
            "channel": sub.channel,
            "cadence": str(cadence),
            "rrule": None if cadence.rule is None else cadence.rule.text,
            "digest": sub.digest,
            "occurrences_on_date": [
                {
                    "wall_time": hhmm(o.wall_time),
                    "occurrence_at": o.instant.isoformat(),
                    "dedup_key": occurrence_key(sub.id, cadence, o),
                }
                for o in day_occurrences
            ],
            "next_occurrences": self._next_occurrences(cadence),
            "active": sub.active,
            "outcome": _outcome(verdicts, row, decision),
            "verdicts": [v.as_dict() for v in verdicts],
            "delivery": delivery,
        }

    def _digest(self, sub: Subscription, row: Any) -> Verdict:
        """A digest lists the events bound when its send was claimed; before that, those waiting."""
        assert self.recipient.id is not None
        delivery_id = None if row is None else row.id
        bound, waiting = digest_state(self.session, self.recipient.id, sub.kind, delivery_id)
        data = {"bound": bound, "waiting": waiting}
        if row is not None and row.reason == "empty_digest":
            return Verdict("digest", "fail", "no events since the last digest: recorded skipped", data)
        if bound:
            return Verdict("digest", "pass", f"lists the {bound} event(s) bound at its send's claim", data)
        detail = f"{waiting} event(s) waiting; bound when the send is claimed (none: skipped)"
        return Verdict("digest", "pass", detail, data)

    def _next_occurrences(self, cadence: Cadence, count: int = 5) -> list[str]:
        """The schedule's next occurrences from now, in local time (explain shows what comes)."""
        found: list[str] = []
        at = self.now
        while len(found) < count:
            occurrence = first_occurrence_at_or_after(cadence, self.tz, at)
            if occurrence is None:
                break
            found.append(to_local(occurrence.instant, self.tz).isoformat())
            at = occurrence.instant + timedelta(seconds=1)
        return found

    def _cadence(self, cadence: Cadence, day: date, occurrence: Occurrence | None) -> Verdict:
        data: dict[str, Any] = {
            "wall_time": hhmm(cadence.wall_time),
            "wall_times": [hhmm(t) for t in cadence.wall_times],
            "days": cadence.days_text(),
            "rrule": None if cadence.rule is None else cadence.rule.text,
            "local_date": day.isoformat(),
        }
        if not cadence.matches(day):
            return Verdict("cadence", "fail", cadence.why_not(day), data)
        if occurrence is None:
            return Verdict("cadence", "fail", f"{day.isoformat()} does not exist in {self.tz}", data)
        data["occurrence_at"] = occurrence.instant.isoformat()
        return Verdict("cadence", "pass", f"fires at {hhmm(cadence.wall_time)} local ({cadence})", data)

    def _dst(self, cadence: Cadence, occurrence: Occurrence) -> Verdict:
        local = to_local(occurrence.instant, self.tz)
        data: dict[str, Any] = {"adjustment": occurrence.adjustment}
        if occurrence.adjustment == "gap":
            minutes = int(occurrence.shift.total_seconds() // 60)
            data["shift_minutes"] = minutes
            return Verdict(
                "dst",
                "adjusted",
                f"{hhmm(cadence.wall_time)} does not exist that day (DST gap): "
                f"shifted {minutes} min to {hhmm(local)} {local.tzname()}",
                data,
            )
        if occurrence.adjustment == "overlap":
            return Verdict(
                "dst",
                "adjusted",
                f"{hhmm(cadence.wall_time)} happens twice (DST overlap): "
                f"sent once, at the first ({local.tzname()})",
                data,
            )
        return Verdict("dst", "pass", f"no DST adjustment: {_local_text(occurrence.instant, self.tz)}", data)

    def _address(self, rule: checks.Verdict, channel: str) -> Verdict:
        if rule.reason == "opted_out":
            return Verdict("opt_out", "fail", f"opted out of {channel}")
        if rule.reason == "invalid_channel":
            invalid = rule.detail["invalid"]
            return Verdict(
                "opt_out", "fail", f"{channel} address marked invalid: {invalid}", {"invalid": invalid}
            )
        if rule.reason == "no_address":
            return Verdict("opt_out", "fail", f"no {channel} address on file")
        return Verdict("opt_out", "pass", f"not opted out; {channel} address on file")

    def _engagement(self, sub: Subscription, occurrence: Occurrence) -> tuple[checks.Verdict, Verdict]:
        events = ENGAGEMENT
        engaged_at = self.session.scalar(
            select(func.max(events.c.occurred_at)).where(
                events.c.recipient_id == self.recipient.id, events.c.occurred_at <= occurrence.instant
            )
        )
        last_sent = self.session.scalar(
            select(func.max(DELIVERIES.c.local_date)).where(
                DELIVERIES.c.subscription_id == sub.id,
                DELIVERIES.c.status.in_([s.value for s in BACKOFF_COUNTED_STATUSES]),
                DELIVERIES.c.local_date < occurrence.local_date,
            )
        )
        since = engaged_at if isinstance(engaged_at, datetime) else sub.created_at
        verdict = engagement_backoff(
            self.policy.tiers_for(sub.kind),
            occurrence.local_date,
            local_date_of(since, self.tz),
            last_sent if isinstance(last_sent, date) else None,
        )
        data = {
            "last_engaged_at": engaged_at.isoformat() if isinstance(engaged_at, datetime) else None,
            "inactive_days": verdict.inactive_days,
            "tier": verdict.tier.label,
            "days_since_last_send": verdict.days_since_last_send,
        }
        basis = "engagement" if isinstance(engaged_at, datetime) else "subscription start (no engagement yet)"
        last = (
            "nothing sent before"
            if verdict.days_since_last_send is None
            else (f"last send {verdict.days_since_last_send} day(s) before")
        )
        detail = (
            f"inactive {verdict.inactive_days} day(s) since {basis}: tier every {verdict.tier.interval_days} "
            f"day(s); {last}"
        )
        presented = Verdict(
            "engagement",
            "pass" if verdict.send else "fail",
            detail + ("" if verdict.send else " → skipped (engagement_backoff)"),
            data,
        )
        if verdict.send:
            return checks.Verdict("engagement", "pass", occurrence.instant), presented
        failed = checks.Verdict(
            "engagement", "fail", occurrence.instant, DeliveryStatus.skipped, "engagement_backoff"
        )
        return failed, presented

    def _quiet(self, sub: Subscription, instant: datetime, rule: checks.Verdict) -> Verdict:
        if rule.outcome == "bypassed":
            return Verdict("quiet_hours", "bypassed", f"{sub.kind} is a critical kind")
        window = checks.quiet_window(self.policy, sub.channel, self.recipient.audience(sub.channel)).text()
        data = {"window": window, "deferred": rule.outcome == "deferred", "send_at": rule.at.isoformat()}
        if rule.outcome == "deferred":
            return Verdict(
                "quiet_hours",
                "deferred",
                f"{hhmm(to_local(instant, self.tz))} is inside {window}: deferred to "
                f"{_local_text(rule.at, self.tz)}",
                data,
            )
        return Verdict("quiet_hours", "pass", f"outside quiet hours ({window})", data)

    def _lateness(self, sub: Subscription, rule: checks.Verdict, row: Any) -> Verdict:
        limit = self.policy.lateness_for(sub.kind)
        data: dict[str, Any] = {"max_lateness_seconds": int(limit.total_seconds())}
        if row is not None and row.status == DeliveryStatus.missed.value:
            late = row.created_at - row.scheduled_at
            data["late_by_seconds"] = int(late.total_seconds())
            return Verdict(
                "lateness", "fail", f"planned {late} after its time (more than {limit}): missed", data
            )
        if row is not None and row.sent_at is not None:
            late = row.sent_at - row.scheduled_at
            data["sent_after_seconds"] = round(late.total_seconds(), 3)
            return Verdict(
                "lateness", "pass", f"sent {late.total_seconds():.0f} s after its scheduled time", data
            )
        if row is None and rule.failed:
            return Verdict("lateness", "fail", f"not planned and now more than {limit} past its time", data)
        return Verdict("lateness", "pass", f"within the maximum lateness ({limit})", data)

    def _counted(self, sub: Subscription, around: datetime, row: Any) -> list[datetime]:
        """Instants counted against the cap near ``around``, this occurrence's own delivery excluded."""
        reach = self.policy.cap_for(sub.kind, sub.channel).window + timedelta(days=1)
        c = DELIVERIES.c
        stmt = select(c.scheduled_at).where(
            c.recipient_id == self.recipient.id,
            c.channel == sub.channel,
            c.status.in_([s.value for s in CAP_COUNTED_STATUSES]),
            c.scheduled_at > around - reach,
            c.scheduled_at < around + reach,
        )
        if row is not None:
            stmt = stmt.where(c.id != row.id)
        return sorted(self.session.scalars(stmt))

    def _cap(self, sub: Subscription, rule: checks.Verdict, row: Any) -> Verdict:
        if rule.outcome == "bypassed":
            return Verdict("cap", "bypassed", f"{sub.kind} is a critical kind")
        cap = self.policy.cap_for(sub.kind, sub.channel)
        scheduled = rule.at
        counted = self._counted(sub, scheduled, row)
        in_window = sum(1 for t in counted if scheduled - cap.window < t <= scheduled)
        data = {"cap": cap.text, "counted_in_window": in_window}
        if row is not None and row.reason == "frequency_cap":
            return Verdict("cap", "fail", f"suppressed: the cap {cap.text} was full when planned", data)
        if not rule.failed:
            return Verdict(
                "cap", "pass", f"{in_window} other send(s) counted in the window; cap {cap.text}", data
            )
        return Verdict("cap", "fail", f"{in_window} other send(s) counted: cap {cap.text} is full", data)

    def _dedup(self, sub: Subscription, day: date, key: str, row: Any) -> Verdict:
        if row is not None:
            detail = f"delivery {row.id} ({key}): {row.status}" + (f" ({row.reason})" if row.reason else "")
            return Verdict(
                "dedup", "info", detail, {"dedup_key": key, "delivery_id": row.id, "status": row.status}
            )
        if sub.next_local_date is not None and day >= sub.next_local_date:
            when = sub.next_at.isoformat() if sub.next_at else "?"
            return Verdict(
                "dedup", "info", f"not planned yet: the planner reaches {key} at {when}", {"dedup_key": key}
            )
        return Verdict("dedup", "info", f"no delivery for {key}", {"dedup_key": key})

    def _attempts(self, row: Any) -> Verdict:
        detail = f"{row.attempts} attempt(s)"
        if row.last_error:
            detail += f"; last error: {row.last_error}"
        verdict = "fail" if row.status == DeliveryStatus.dead.value else "info"
        return Verdict("attempts", verdict, detail, {"attempts": row.attempts, "last_error": row.last_error})

    def adhoc(self, day: date, kind: str | None) -> list[dict[str, Any]]:
        zone = get_zone(self.tz)
        start = datetime.combine(day, time(0), zone).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(UTC)
        c = DELIVERIES.c
        stmt = (
            select(DELIVERIES)
            .where(
                c.recipient_id == self.recipient.id,
                c.subscription_id.is_(None),
                c.scheduled_at >= start,
                c.scheduled_at < end,
            )
            .order_by(c.scheduled_at, c.id)
        )
        if kind is not None:
            stmt = stmt.where(c.kind == kind)
        found = []
        for row in self.session.execute(stmt):
            item = delivery_dict(row, self.recipient.external_id)
            item["timeline"] = timeline(self.session, row.id, row)
            found.append(item)
        return found


#: How explain names the chain's rules (the channel rule is shown as the opt-out check).
_RULE_NAMES = {"channel": "opt_out"}


def _outcome(verdicts: list[Verdict], row: Any, decision: checks.Decision | None) -> str:
    """What happened (a delivery row), or else what the planner's chain would decide."""
    if row is not None:
        return f"{row.status}" + (f" ({row.reason})" if row.reason else "")
    for rule in ("subscription", "cadence"):
        if any(v.rule == rule and v.verdict == "fail" for v in verdicts):
            return f"no send: {rule}"
    assert decision is not None  # an occurrence exists, so the chain ran
    if not decision.to_send:
        rule = decision.verdicts[-1].rule
        return f"no send: {_RULE_NAMES.get(rule, rule)}"
    return "would be sent" + (
        " (deferred by quiet hours)" if decision.reason == "quiet_hours_deferred" else ""
    )


def explain(
    app: App, recipient: str, *, now: datetime, kind: str | None = None, local_date: date | None = None
) -> dict[str, Any]:
    """Every subscription's verdicts for ``local_date`` (default: today in the recipient's zone)."""
    policy = app.policy
    with app.sessions() as session:
        person = recipient_by_external_id(session, recipient)
        day = local_date or local_date_of(now, person.timezone)
        stmt = select(Subscription).where(SUBSCRIPTIONS.c.recipient_id == person.id)
        if kind is not None:
            stmt = stmt.where(SUBSCRIPTIONS.c.kind == kind)
        subs = list(session.scalars(stmt.order_by(SUBSCRIPTIONS.c.kind, SUBSCRIPTIONS.c.channel)))
        explainer = _Explainer(session, person, policy, now)
        adhoc = explainer.adhoc(day, kind)
        if kind is not None and not subs and not adhoc:
            raise NotFound("subscription or delivery", f"{recipient}/{kind}")
        return {
            "recipient_id": person.external_id,
            "timezone": person.timezone,
            "local_date": day.isoformat(),
            "now": now.isoformat(),
            "subscriptions": [explainer.subscription(s, day) for s in subs],
            "adhoc": adhoc,
        }


def render(result: dict[str, Any]) -> list[Table]:
    """One table per subscription (rule, verdict, detail), then one for ad-hoc deliveries."""
    tables = []
    for sub in result["subscriptions"]:
        table = Table(
            title=f"{result['recipient_id']} · {sub['kind']} by {sub['channel']} · {result['local_date']} "
            f"({result['timezone']}) → {sub['outcome']}"
        )
        for column in ("rule", "verdict", "detail"):
            table.add_column(column)
        for v in sub["verdicts"]:
            table.add_row(v["rule"], v["verdict"], v["detail"])
        tables.append(table)
    if result["adhoc"]:
        table = Table(title=f"ad-hoc deliveries on {result['local_date']}")
        for column in ("id", "kind", "channel", "scheduled (UTC)", "status", "reason", "attempts"):
            table.add_column(column)
        for d in result["adhoc"]:
            table.add_row(
                str(d["id"]),
                d["kind"],
                d["channel"],
                d["scheduled_at"],
                d["status"],
                d["reason"] or "",
                str(d["attempts"]),
            )
        tables.append(table)
    return tables
