"""Contract of the rule chain: every place that decides reaches the same verdict on the same facts.

Each named case is one occurrence's facts (a recipient, a subscription, engagement, earlier sends,
the deliveries counted against the cap). The planner run (``plan_chunk``), an ad-hoc notification
(``decide_adhoc``), ``explain``'s replay (``occurrence_facts`` with ``decide`` and ``every_verdict``),
``simulate`` and the worker's re-check at send time (``recheck_at_send``) each get those facts and
must agree on (status, reason, instant) wherever their rule applies. Pure: no servers, and nothing
above the core is imported (``tests/e2e/test_rule_chain_doors.py`` drives the same cases
through the doors themselves).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

import pytest

from planner.core import checks
from planner.core.adhoc import AdhocRequest, decide_adhoc
from planner.core.cadence import Cadence, occurrences_on
from planner.core.planning import ChunkInputs, SubscriptionState, occurrence_facts, plan_chunk
from planner.core.policy import BackoffTier, Cap, PlanningPolicy
from planner.core.quiet_hours import QuietHours
from planner.core.recipient import RecipientState
from planner.core.simulate import simulate, start_of

NY = "America/New_York"
DAY = date(2026, 3, 10)  # a Tuesday, EDT (-04:00)
POLICY = PlanningPolicy(
    quiet_defaults={"sms": QuietHours(time(21), time(8)), "email": QuietHours(time(0), time(0))},
    caps={"sms": Cap(1, timedelta(days=1), "1/day"), "email": Cap(2, timedelta(days=1), "2/day")},
    tiers=(BackoffTier(0, 1), BackoffTier(7, 2), BackoffTier(30, 7)),
    critical_kinds=frozenset({"password_reset"}),
)
Verdict3 = tuple[str, str | None, datetime]


@dataclass(frozen=True)
class Case:
    name: str
    kind: str = "reminder"
    channel: str = "sms"
    wall: time = time(10, 0)
    opted_out: bool = False
    #: Opted out of this kind on this channel only (a preference or a one-click unsubscribe).
    kind_opted_out: bool = False
    invalid: str | None = None
    address: bool = True
    own_quiet: QuietHours | None = None
    cap_full: bool = False
    late_by: timedelta = timedelta(0)
    snooze_until: date | None = None
    #: Days since the recipient last engaged, at the occurrence.
    inactive_days: int = 0
    #: Days since the subscription's last to-be-sent delivery (None: nothing sent before).
    last_sent_days_ago: int | None = None
    end_date: date | None = None

    @property
    def instant(self) -> datetime:
        return datetime.combine(DAY, self.wall, tzinfo=UTC) + timedelta(hours=4)  # EDT wall -> UTC

    @property
    def now(self) -> datetime:
        return self.instant + self.late_by

    @property
    def counted(self) -> list[datetime]:
        # One send an hour earlier fills the 1/day SMS cap (and half the email cap).
        earlier = self.instant - timedelta(hours=1)
        return [earlier, earlier + timedelta(minutes=1)] if self.cap_full else []

    @property
    def planned_only(self) -> bool:
        """Whether the deciding rule applies to schedules only (an ad-hoc send ignores it)."""
        return self.snooze_until is not None or self.inactive_days > 0

    def recipient(self) -> RecipientState:
        address = ("ann@example.com" if self.channel == "email" else "+12125550100") if self.address else None
        return RecipientState(
            id=1,
            external_id="ann",
            timezone=NY,
            email=address if self.channel == "email" else None,
            phone=address if self.channel == "sms" else None,
            quiet_hours={self.channel: self.own_quiet} if self.own_quiet else {},
            opted_out=frozenset({self.channel}) if self.opted_out else frozenset(),
            invalid={self.channel: self.invalid} if self.invalid else {},
            opted_out_kinds={self.channel: frozenset({self.kind}) if self.kind_opted_out else frozenset()},
        )

    def subscription(self) -> SubscriptionState:
        cadence = Cadence(self.wall, end_date=self.end_date)
        return SubscriptionState(
            id=7,
            recipient_id=1,
            kind=self.kind,
            channel=self.channel,
            cadence=cadence,
            next_at=start_of(DAY, NY),
            next_local_date=DAY,
            created_at=self.instant - timedelta(days=400),
            snooze_until=self.snooze_until,
        )

    def inputs(self) -> ChunkInputs:
        engaged = self.instant - timedelta(days=self.inactive_days, hours=1)
        last_sent = (
            {} if self.last_sent_days_ago is None else {7: DAY - timedelta(days=self.last_sent_days_ago)}
        )
        return ChunkInputs(
            subscriptions=[self.subscription()],
            recipients={1: self.recipient()},
            engagement={1: [engaged]},
            last_sent=last_sent,
            cap_counted={(1, self.channel): self.counted},
        )


CASES = [
    Case("plain send"),
    Case("opted out", opted_out=True),
    Case("opted out of the kind", kind_opted_out=True),
    Case("opted out of another kind", kind="daily_brief", kind_opted_out=False),
    Case("opted out of the kind on email", channel="email", kind_opted_out=True, wall=time(13, 0)),
    Case("invalid number", invalid="21211: not a mobile number"),
    Case("no address", address=False),
    Case("inside default sms quiet hours", wall=time(22, 30)),
    Case("critical kind inside quiet hours", kind="password_reset", wall=time(22, 30)),
    Case(
        "own quiet hours on email",
        channel="email",
        wall=time(13, 0),
        own_quiet=QuietHours(time(12), time(14)),
    ),
    Case("cap full", cap_full=True),
    Case("critical kind with the cap full", kind="password_reset", cap_full=True),
    Case("late", late_by=timedelta(hours=5)),
    Case("late but within lateness", late_by=timedelta(hours=3)),
    Case("opted out and late", opted_out=True, late_by=timedelta(hours=5)),
    Case("snoozed", snooze_until=DAY + timedelta(days=3)),
    Case("snooze ended that day", snooze_until=DAY),
    Case("snoozed and opted out", snooze_until=DAY + timedelta(days=1), opted_out=True),
    Case("active tier: sent daily", inactive_days=3, last_sent_days_ago=1),
    Case("second tier, sent the day before: skipped", inactive_days=10, last_sent_days_ago=1),
    Case("second tier, two days since the last send", inactive_days=10, last_sent_days_ago=2),
    Case("third tier, six days since the last send: skipped", inactive_days=45, last_sent_days_ago=6),
    Case("third tier, a week since the last send", inactive_days=45, last_sent_days_ago=7),
    Case("third tier, nothing sent before", inactive_days=45),
    Case("backoff skip inside quiet hours", wall=time(22, 30), inactive_days=10, last_sent_days_ago=1),
    Case("end date passed", end_date=DAY - timedelta(days=1)),
]


def occurrence(case: Case):  # type: ignore[no-untyped-def]
    found = occurrences_on(case.subscription().cadence, NY, DAY)
    return found[0] if found else None


def by_planner(case: Case) -> Verdict3 | None:
    plan = plan_chunk(case.inputs(), POLICY, case.now, case.instant)
    if not plan.deliveries:
        return None
    [planned] = plan.deliveries
    return planned.status.value, planned.reason, planned.scheduled_at


def by_explain(case: Case) -> Verdict3 | None:
    """``explain``'s replay: the planner's facts for the occurrence, the chain, and every verdict."""
    found = occurrence(case)
    if found is None:
        return None
    inputs = case.inputs()
    facts = occurrence_facts(
        found, inputs.subscriptions[0], inputs, case.now, inputs.last_sent.get(7), inputs.cap_counted
    )
    decision = checks.decide(POLICY, facts)
    every = checks.every_verdict(POLICY, facts)
    first_failed = next((v for v in every.values() if v.failed), None)
    assert (first_failed.rule if first_failed else None) == decision.deciding_rule
    return decision.status.value, decision.reason, decision.scheduled_at


def by_notify(case: Case) -> Verdict3:
    request = AdhocRequest("ann", case.kind, case.channel, "key-1", "default", case.instant, None)
    decision = decide_adhoc(request, case.recipient(), POLICY, case.instant, case.counted)
    return decision.status.value, decision.reason, decision.scheduled_at


def by_worker(case: Case) -> Verdict3:
    """The worker reaches the delivery at its occurrence instant (plus any lateness)."""
    stop = checks.recheck_at_send(
        POLICY,
        kind=case.kind,
        channel=case.channel,
        audience=case.recipient().audience(case.channel),
        scheduled_at=case.instant,
        now=case.now,
    )
    if stop is None:
        return "planned", None, case.instant
    if stop.failed:
        assert stop.status is not None
        return stop.status.value, stop.reason, stop.at
    return "planned", stop.reason, stop.at


def simulated(case: Case) -> list[datetime]:
    return [send.send_at for send in simulate(case.inputs(), POLICY, DAY, 1)]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_every_decision_point_reaches_the_same_verdict(case: Case) -> None:
    expected = by_planner(case)
    assert by_explain(case) == expected
    if expected is None:  # no occurrence at all (the schedule ended): nothing anywhere
        assert simulated(case) == []
        return
    status, _, at = expected
    # An ad-hoc send is wanted now at the earliest, so it is never late, and is not a planned
    # occurrence, so snooze and backoff do not apply to it.
    if not case.late_by and not case.planned_only:
        assert by_notify(case) == expected
    # The worker re-checks the channel, lateness and quiet hours; the cap, snooze and backoff were
    # settled when the delivery was created.
    if not case.cap_full and not case.planned_only:
        assert by_worker(case) == expected
    # simulate shows the planner's sends; nothing is late in a forecast.
    if not case.late_by:
        assert simulated(case) == ([at] if status == "planned" else [])


def test_a_kind_opt_out_names_its_scope_and_spares_the_other_kinds() -> None:
    case = Case("opted out of the kind", kind_opted_out=True)
    audience = case.recipient().audience("sms")
    verdict = checks.check_channel(audience, "sms", case.instant, "reminder")
    assert (verdict.reason, verdict.detail) == ("opted_out", {"scope": "kind:reminder"})
    assert checks.check_channel(audience, "sms", case.instant, "daily_brief").outcome == "pass"
    everything = replace(case, opted_out=True).recipient().audience("sms")
    assert checks.check_channel(everything, "sms", case.instant, "reminder").detail == {
        "scope": "channel:sms"
    }


def test_the_cases_cover_every_outcome_of_the_chain() -> None:
    outcomes = {found[:2] for case in CASES if (found := by_planner(case)) is not None}
    assert outcomes == {
        ("planned", None),
        ("planned", "quiet_hours_deferred"),
        ("suppressed", "opted_out"),
        ("suppressed", "invalid_channel"),
        ("suppressed", "no_address"),
        ("suppressed", "frequency_cap"),
        ("missed", "too_late"),
        ("skipped", "snoozed"),
        ("skipped", "engagement_backoff"),
    }


def test_the_cases_reach_every_backoff_tier() -> None:
    tiers = set()
    for case in CASES:
        found = occurrence(case)
        if found is None:
            continue
        inputs = case.inputs()
        facts = occurrence_facts(
            found, inputs.subscriptions[0], inputs, case.now, inputs.last_sent.get(7), {}
        )
        verdict = checks.every_verdict(POLICY, facts)["engagement"]
        tiers.add(verdict.detail["tier"])
    assert tiers == {tier.label for tier in POLICY.tiers}


def test_critical_kinds_bypass_quiet_hours_everywhere() -> None:
    case = replace(CASES[0], kind="password_reset", wall=time(22, 30))
    planned = by_planner(case)
    assert planned is not None
    assert planned[2] == by_notify(case)[2] == by_worker(case)[2] == case.instant
    assert simulated(case) == [case.instant]


def test_a_backoff_skip_records_its_engagement_facts_once() -> None:
    case = next(c for c in CASES if c.name == "third tier, six days since the last send: skipped")
    [planned] = plan_chunk(case.inputs(), POLICY, case.now, case.instant).deliveries
    assert planned.reason == "engagement_backoff"
    engagement = planned.detail["engagement"]
    assert engagement["inactive_days"] == 45 and engagement["days_since_last_send"] == 6
    assert not set(engagement) & set(planned.detail), "the facts are under 'engagement' only"
