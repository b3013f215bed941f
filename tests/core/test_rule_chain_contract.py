"""Contract of the rule chain: every place that decides reaches the same verdict on the same facts.

The planner run (``plan_chunk``), an ad-hoc notification (``notify.decide``), the worker's re-check
at send time (``recheck_at_send``), ``explain`` (``occurrence_verdicts``) and ``simulate`` each get
the facts of one case and must agree on (status, reason, instant). A copy of a rule that drifts
(``simulate`` once deferred critical kinds into quiet hours) fails here. No servers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

import pytest

from planner.commands.notify import AdhocRequest, decide
from planner.core import checks
from planner.core.cadence import Cadence
from planner.core.planning import ChunkInputs, RecipientState, SubscriptionState, plan_chunk
from planner.core.policy import Cap, PlanningPolicy
from planner.core.quiet_hours import QuietHours
from planner.core.simulate import SubscriptionSpec, simulate
from planner.readmodels.explain import occurrence_verdicts
from planner.store.models import Recipient

NY = "America/New_York"
DAY = date(2026, 3, 10)  # a Tuesday, EDT (-04:00)
POLICY = PlanningPolicy(
    quiet_defaults={"sms": QuietHours(time(21), time(8)), "email": QuietHours(time(0), time(0))},
    caps={"sms": Cap(1, timedelta(days=1), "1/day"), "email": Cap(2, timedelta(days=1), "2/day")},
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

    def audience(self) -> checks.Audience:
        address = ("ann@example.com" if self.channel == "email" else "+12125550100") if self.address else None
        kinds = frozenset({self.kind}) if self.kind_opted_out else frozenset()
        return checks.Audience(NY, address, self.opted_out, self.invalid, self.own_quiet, kinds)


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
]


def by_planner(case: Case) -> Verdict3:
    audience = case.audience()
    recipient = RecipientState(
        id=1,
        external_id="ann",
        timezone=NY,
        email=audience.address if case.channel == "email" else None,
        phone=audience.address if case.channel == "sms" else None,
        quiet_hours={case.channel: case.own_quiet} if case.own_quiet else {},
        opted_out=frozenset({case.channel}) if case.opted_out else frozenset(),
        invalid={case.channel: case.invalid} if case.invalid else {},
        opted_out_kinds={case.channel: audience.opted_out_kinds},
    )
    sub = SubscriptionState(
        id=7,
        recipient_id=1,
        kind=case.kind,
        channel=case.channel,
        cadence=Cadence(case.wall),
        next_at=case.instant,
        next_local_date=DAY,
        created_at=case.instant - timedelta(days=1),
    )
    inputs = ChunkInputs(
        subscriptions=[sub],
        recipients={1: recipient},
        engagement={1: [case.instant - timedelta(hours=2)]},  # engaged today: no backoff
        last_sent={},
        cap_counted={(1, case.channel): case.counted},
    )
    [planned] = plan_chunk(inputs, POLICY, case.now, case.instant).deliveries
    return planned.status.value, planned.reason, planned.scheduled_at


def by_notify(case: Case) -> Verdict3:
    audience = case.audience()
    recipient = Recipient(
        external_id="ann",
        timezone=NY,
        email=audience.address if case.channel == "email" else None,
        phone=audience.address if case.channel == "sms" else None,
        email_opt_out=case.opted_out and case.channel == "email",
        sms_opt_out=case.opted_out and case.channel == "sms",
        email_invalid=case.invalid if case.channel == "email" else None,
        sms_invalid=case.invalid if case.channel == "sms" else None,
        email_quiet_start=case.own_quiet.start if case.own_quiet and case.channel == "email" else None,
        email_quiet_end=case.own_quiet.end if case.own_quiet and case.channel == "email" else None,
        opt_outs=[f"{case.kind}/{case.channel}"] if case.kind_opted_out else None,
        created_at=case.instant,
        updated_at=case.instant,
    )
    request = AdhocRequest("ann", case.kind, case.channel, "key-1", "default", case.instant, None)
    decision = decide(request, recipient, POLICY, case.instant, case.counted)
    return decision.status.value, decision.reason, decision.scheduled_at


def by_worker(case: Case) -> Verdict3:
    """The worker reaches the delivery at its occurrence instant (plus any lateness)."""
    stop = checks.recheck_at_send(
        POLICY,
        kind=case.kind,
        channel=case.channel,
        audience=case.audience(),
        scheduled_at=case.instant,
        now=case.now,
    )
    if stop is None:
        return "planned", None, case.instant
    if stop.failed:
        assert stop.status is not None
        return stop.status.value, stop.reason, stop.at
    return "planned", stop.reason, stop.at


def by_explain(case: Case) -> Verdict3:
    backoff = checks.Verdict("engagement", "pass", case.instant)
    rules = occurrence_verdicts(
        POLICY,
        kind=case.kind,
        channel=case.channel,
        audience=case.audience(),
        at=case.instant,
        now=case.now,
        counted=case.counted,
        backoff=backoff,
    )
    decision = rules.decision
    return decision.status.value, decision.reason, decision.scheduled_at


def simulated(case: Case) -> list[datetime]:
    spec = SubscriptionSpec.of(POLICY, case.kind, case.channel, Cadence(case.wall), case.audience())
    return [send.send_at for send in simulate(NY, [spec], DAY, 1)]


def by_simulate(case: Case) -> datetime:
    [send_at] = simulated(case)
    return send_at


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_every_decision_point_reaches_the_same_verdict(case: Case) -> None:
    expected = by_planner(case)
    assert by_explain(case) == expected
    # An ad-hoc send is wanted now at the earliest, so it is never late; the cap is counted when a
    # delivery is created, so the worker does not count it again.
    if not case.late_by:
        assert by_notify(case) == expected
    if not case.cap_full:
        assert by_worker(case) == expected
    # simulate shows the sends of a schedule (not the suppressions): the instant must agree.
    if expected[0] == "planned":
        assert by_simulate(case) == expected[2]
    # ... and shows none of a channel the recipient cannot be reached on (opted out, no address).
    if expected[1] in ("opted_out", "invalid_channel", "no_address"):
        assert simulated(case) == []


def test_a_kind_opt_out_names_its_scope_and_spares_the_other_kinds() -> None:
    case = Case("opted out of the kind", kind_opted_out=True)
    verdict = checks.check_channel(case.audience(), "sms", case.instant, "reminder")
    assert (verdict.reason, verdict.detail) == ("opted_out", {"scope": "kind:reminder"})
    assert checks.check_channel(case.audience(), "sms", case.instant, "daily_brief").outcome == "pass"
    everything = replace(case, opted_out=True).audience()
    assert checks.check_channel(everything, "sms", case.instant, "reminder").detail == {
        "scope": "channel:sms"
    }


def test_the_cases_cover_every_outcome_of_the_chain() -> None:
    outcomes = {by_planner(case)[:2] for case in CASES}
    assert outcomes == {
        ("planned", None),
        ("planned", "quiet_hours_deferred"),
        ("suppressed", "opted_out"),
        ("suppressed", "invalid_channel"),
        ("suppressed", "no_address"),
        ("suppressed", "frequency_cap"),
        ("missed", "too_late"),
    }


def test_critical_kinds_bypass_quiet_hours_everywhere() -> None:
    case = replace(CASES[0], kind="password_reset", wall=time(22, 30))
    assert (
        by_planner(case)[2] == by_notify(case)[2] == by_worker(case)[2] == by_simulate(case) == case.instant
    )
