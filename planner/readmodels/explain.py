"""Why a recipient got, or did not get, a notification on a local date: each rule's verdict.

The verdicts are the planner's own: the occurrence's inputs are loaded by the planner's chunk store
(:meth:`planner.store.chunks.ChunkStore.load_inputs`) and decided by the planner's functions
(:func:`planner.core.planning.occurrence_facts`, :func:`planner.core.checks.decide`); every rule's
verdict comes from :func:`planner.core.checks.every_verdict` on the same facts, so ``explain`` cannot
disagree with the next planner run. When the planner already decided, the delivery row (its dedup
key), its attempts and timeline say what happened.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from planner.app import App
from planner.core import checks
from planner.core.cadence import Cadence, Occurrence, first_occurrence_at_or_after, occurrences_on
from planner.core.engagement_slots import HALF_LIFE, NO_ENGAGEMENT, SLOT_MINUTES
from planner.core.learned_time import THRESHOLD, histogram, recorded_basis
from planner.core.localtime import UTC, get_zone, hhmm, local_date_of, to_local
from planner.core.planning import (
    ChunkInputs,
    SubscriptionState,
    dedup_key_for,
    last_engaged,
    moved_to,
    occurrence_facts,
    occurrence_key,
    timed_occurrence,
)
from planner.core.policy import PlanningPolicy
from planner.core.recipient import RecipientState
from planner.core.rules import backoff_tier
from planner.errors import NotFound
from planner.readmodels import explain_lines as lines
from planner.store import explain as store
from planner.store.chunks import ChunkStore, cadence_of, subscription_state
from planner.store.db import Session
from planner.store.digests import digest_state
from planner.store.models import Subscription
from planner.store.recipient_facts import recipient_state_by_external_id
from planner.store.subscriptions import recipient_subscriptions

#: How many of the schedule's next occurrences explain lists.
NEXT_OCCURRENCES = 5


class _Explainer:
    def __init__(
        self, session: Session, recipient: RecipientState, policy: PlanningPolicy, now: datetime
    ) -> None:
        self.session = session
        self.recipient = recipient
        self.policy = policy
        self.now = now
        self.tz = recipient.timezone
        self.chunks = ChunkStore.of(session)

    def subscription(self, sub: Subscription, day: date) -> dict[str, Any]:
        assert sub.id is not None
        cadence = cadence_of(sub)
        shown: list[lines.RuleLine] = []
        if not sub.active:
            shown.append(lines.RuleLine("subscription", "fail", "inactive: removed or replaced by an import"))
        day_occurrences = occurrences_on(cadence, self.tz, day)
        # With several wall times a day the first is explained rule by rule; all are listed.
        occurrence = day_occurrences[0] if day_occurrences else None
        shown.append(lines.cadence_line(cadence, day, occurrence, self.tz))
        key = (
            dedup_key_for(sub.id, day) if occurrence is None else occurrence_key(sub.id, cadence, occurrence)
        )
        row = store.delivery_row(self.session, key)
        decision = None
        learned: dict[str, Any] | None = None
        if occurrence is not None:
            decision, rule_lines, learned = self._rules(sub, cadence, occurrence, row)
            shown += rule_lines
        shown.append(lines.dedup_line(key, row, sub.next_local_date, sub.next_at, day))
        delivery = None if row is None else self._shown(row)
        if row is not None:
            shown.append(lines.attempts_line(row))
        fallback = lines.fallback_line(sub.fallback, delivery)
        if fallback is not None:
            shown.append(fallback)
        return {
            "subscription_id": sub.id,
            "kind": sub.kind,
            "channel": sub.channel,
            "cadence": str(cadence),
            "rrule": None if cadence.rule is None else cadence.rule.text,
            "digest": sub.digest,
            "occurrences_on_date": [self._occurrence(sub.id, cadence, o) for o in day_occurrences],
            "next_occurrences": self._next_occurrences(cadence),
            "learned_time": learned,
            "active": sub.active,
            "outcome": lines.outcome(shown, row, decision),
            "verdicts": [line.as_dict() for line in shown],
            "delivery": delivery,
        }

    def _shown(self, row: Any) -> dict[str, Any]:
        """A delivery row with its timeline and, in words, its fallback link either way."""
        shown = store.shown_delivery(self.session, row, self.recipient.external_id)
        shown["fallback_note"] = lines.fallback_note(shown)
        return shown

    def _rules(
        self, sub: Subscription, cadence: Cadence, fired: Occurrence, row: Any
    ) -> tuple[checks.Decision, list[lines.RuleLine], dict[str, Any] | None]:
        """The planner's decision on the occurrence, and every rule's verdict on the same facts;
        with a learned send time, the choice and the statistic it was made from."""
        inputs, state = self._inputs(sub, fired)
        occurrence, learned_line, learned = self._timed(state, inputs, fired, row)
        facts = occurrence_facts(
            occurrence, state, inputs, self.now, inputs.last_sent.get(state.id), inputs.cap_counted
        )
        counted = facts.counted
        decision = checks.decide(self.policy, facts)
        verdicts = checks.every_verdict(self.policy, facts)
        engaged_at = last_engaged(inputs.engagement.get(sub.recipient_id, ()), occurrence.instant)
        shown = [lines.dst_line(occurrence, self.tz)]
        if learned_line is not None:
            shown.insert(0, learned_line)
        if "snooze" in verdicts and verdicts["snooze"].failed:
            shown.append(lines.snooze_line(verdicts["snooze"]))
        if sub.digest:
            shown.append(self._digest(sub, row))
        window = checks.quiet_window(self.policy, sub.channel, facts.audience).text()
        inactive = verdicts["engagement"].detail["inactive_days"]
        tier = backoff_tier(self.policy.tiers_for(sub.kind), inactive)
        shown += [
            lines.address_line(verdicts["channel"], sub.channel),
            lines.engagement_line(verdicts["engagement"], engaged_at, tier.interval_days),
            lines.quiet_line(sub.kind, verdicts["quiet_hours"], window, occurrence.instant, self.tz),
            lines.lateness_line(verdicts["lateness"], row, self.policy.lateness_for(sub.kind)),
            lines.cap_line(
                sub.kind, verdicts["cap"], self.policy.cap_for(sub.kind, sub.channel), counted, row
            ),
        ]
        return decision, shown, learned

    def _timed(
        self, state: SubscriptionState, inputs: ChunkInputs, fired: Occurrence, row: Any
    ) -> tuple[Occurrence, lines.RuleLine | None, dict[str, Any] | None]:
        """Where a learned send time puts the date's send: as recorded on its delivery when the
        planner has decided, else as the planner's own choice would now; and what it read."""
        learned = state.cadence.learned
        if learned is None:
            return fired, None, None
        timed, choice = timed_occurrence(fired, state, inputs, self.policy, self.now)
        assert choice is not None
        recorded = (row.planned_detail or {}).get("learned_time") if row is not None else None
        if recorded is not None:
            timed = moved_to(fired, time.fromisoformat(recorded["chosen"]), self.tz)
        slots = inputs.engagement_slots.get(state.recipient_id, NO_ENGAGEMENT)
        # The statistic as it is now, weighted as of the date's window opening, where the planner
        # reads it (for a decided date it may hold engagement recorded since).
        as_of = fired.instant
        shown = {
            "window": learned.window_text,
            "default": hhmm(learned.default),
            "slot_minutes": SLOT_MINUTES,
            "half_life_days": HALF_LIFE.days,
            "threshold": THRESHOLD,
            "as_of": as_of.isoformat(),
            "histogram": histogram(learned, slots, as_of),
            "choice": choice.record,
            "recorded": recorded,
            "why": recorded_basis(recorded or choice.record),
        }
        return timed, lines.learned_line(choice, recorded), shown

    def _inputs(self, sub: Subscription, occurrence: Occurrence) -> tuple[ChunkInputs, SubscriptionState]:
        """The planner's inputs for this one occurrence, read by the planner's own chunk store."""
        state = subscription_state(sub, (occurrence.instant, occurrence.local_date, occurrence.wall_time))
        reach = self.policy.longest_cap_window
        inputs = self.chunks.load_inputs(
            self.session,
            [state],
            occurrence.instant,
            reach,
            lock=False,
            replay_from=occurrence.local_date,
        )
        return inputs, state

    def _digest(self, sub: Subscription, row: Any) -> lines.RuleLine:
        bound, waiting = digest_state(
            self.session, self.recipient.id, sub.kind, None if row is None else row.id
        )
        return lines.digest_line(bound, waiting, row)

    def _occurrence(self, sub_id: int, cadence: Cadence, occurrence: Occurrence) -> dict[str, Any]:
        return {
            "wall_time": hhmm(occurrence.wall_time),
            "occurrence_at": occurrence.instant.isoformat(),
            "dedup_key": occurrence_key(sub_id, cadence, occurrence),
        }

    def _next_occurrences(self, cadence: Cadence) -> list[str]:
        """The schedule's next occurrences from now, in local time (explain shows what comes)."""
        found: list[str] = []
        at = self.now
        while len(found) < NEXT_OCCURRENCES:
            occurrence = first_occurrence_at_or_after(cadence, self.tz, at)
            if occurrence is None:
                break
            found.append(to_local(occurrence.instant, self.tz).isoformat())
            at = occurrence.instant + timedelta(seconds=1)
        return found

    def adhoc(self, day: date, kind: str | None) -> list[dict[str, Any]]:
        zone = get_zone(self.tz)
        start = datetime.combine(day, time(0), zone).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(UTC)
        rows = store.adhoc_between(self.session, self.recipient.id, start, end, kind)
        return [self._shown(row) for row in rows]


def explain(
    app: App, recipient: str, *, now: datetime, kind: str | None = None, local_date: date | None = None
) -> dict[str, Any]:
    """Every subscription's verdicts for ``local_date`` (default: today in the recipient's zone)."""
    with app.sessions() as session:
        person = recipient_state_by_external_id(session, recipient)
        day = local_date or local_date_of(now, person.timezone)
        subs = recipient_subscriptions(session, person.id, kind)
        explainer = _Explainer(session, person, app.policy, now)
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
