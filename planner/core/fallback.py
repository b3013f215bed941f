"""Channel fallback, pure: the rule a subscription or an ad-hoc notification names, and when it fires.

A rule names the other channel, the conditions that call it and a window::

    {"channel": "sms", "on": ["bounced", "invalid_address", "dead"], "within": "2h"}

The conditions are facts learnt about the first delivery after it was handed to the worker:

* ``bounced`` (email), ``undelivered`` and ``failed`` (SMS): what the provider reported after
  accepting the message (a Mailgun or neutral email bounce; a Twilio status callback);
* ``refused``: the provider refused the message when it was sent (a permanent error);
* ``invalid_address``: the provider said the address is dead (at the send, or reported later: a
  hard bounce, a dead number);
* ``dead``: the delivery ended dead, for any reason (refused, its retries spent, an unknown outcome
  twice, a template that cannot be rendered).

``on`` defaults to every condition of the channel, ``within`` to a day. A provider's report more
than ``within`` after the first message was sent does not call the fallback (the news would be
stale); an outcome the worker records is known at once. The fallback is a delivery of its own: its
dedup key is derived from the first delivery's (:func:`fallback_key`), so it is planned once
whatever reports the same failure, and it passes the whole rule chain
(:func:`planner.core.checks.decide`) as an ad-hoc notification wanted now does. A first delivery
the provider reported delivered never calls it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from planner.clock import format_duration, parse_duration
from planner.core import checks, validation
from planner.core.policy import PlanningPolicy
from planner.core.recipient import RecipientState
from planner.errors import InvalidInput

#: Each channel's conditions, the most specific first: a fallback says "because" the first one matched.
CONDITIONS: Mapping[str, tuple[str, ...]] = {
    "email": ("bounced", "invalid_address", "refused", "dead"),
    "sms": ("undelivered", "failed", "invalid_address", "refused", "dead"),
}
#: The provider statuses (``delivery.provider_status``) that are conditions of their own.
REPORTED = frozenset({"bounced", "undelivered", "failed"})
SHORTEST = timedelta(minutes=1)
LONGEST = timedelta(days=7)
DEFAULT_WITHIN = timedelta(days=1)
WITHIN_EXPECTED = "a duration from 1m to 7d, such as '2h'"
SHAPE = 'an object such as {"channel": "sms", "on": ["bounced", "dead"], "within": "2h"}'
FIELDS = ("channel", "on", "within")
#: Dedup keys starting with this are the fallbacks' own (an ad-hoc key may not).
KEY_PREFIX = "fallback:"
_KEY_MAX = 255


@dataclass(frozen=True)
class FallbackRule:
    channel: str
    on: tuple[str, ...]
    within: timedelta = DEFAULT_WITHIN

    @classmethod
    def parse(cls, value: Any, field: str, first_channel: str) -> FallbackRule:
        """Validate a rule as it came in at a door; :class:`InvalidInput` names the bad part."""
        if not isinstance(value, dict):
            raise InvalidInput(field, value, SHAPE)
        unknown = sorted(str(k) for k in value if k not in FIELDS)
        if unknown:
            raise InvalidInput(f"{field}.{unknown[0]}", value[unknown[0]], f"only the fields {list(FIELDS)}")
        channel = validation.channel(value.get("channel"), f"{field}.channel").value
        if channel == first_channel:
            raise InvalidInput(
                f"{field}.channel", channel, f"a channel other than the first one ({first_channel!r})"
            )
        known = CONDITIONS[first_channel]
        on = value.get("on", list(known))
        names = ", ".join(repr(c) for c in known)
        expected = f"a non-empty list of {names} (what can befall {first_channel})"
        if not isinstance(on, list) or not on:
            raise InvalidInput(f"{field}.on", on, expected)
        for i, condition in enumerate(on):
            if condition not in known:
                raise InvalidInput(f"{field}.on[{i}]", condition, expected)
        within = DEFAULT_WITHIN
        if value.get("within") is not None:
            within = _window(value["within"], f"{field}.within")
        return cls(channel, tuple(c for c in known if c in on), within)

    @classmethod
    def stored(cls, value: Mapping[str, Any]) -> FallbackRule:
        """A rule as :meth:`as_json` stored it (written by :meth:`parse`: trusted)."""
        within = value.get("within")
        return cls(
            str(value["channel"]),
            tuple(value.get("on") or ()),
            parse_duration(within, "within") if within else DEFAULT_WITHIN,
        )

    def as_json(self) -> dict[str, Any]:
        return {"channel": self.channel, "on": list(self.on), "within": format_duration(self.within)}


def _window(value: Any, field: str) -> timedelta:
    try:
        within = parse_duration(value, field)
    except InvalidInput:
        raise InvalidInput(field, value, WITHIN_EXPECTED) from None
    if not SHORTEST <= within <= LONGEST:
        raise InvalidInput(field, value, WITHIN_EXPECTED)
    return within


def fallback_key(first_key: str) -> str:
    """The fallback's dedup key: the first delivery's, prefixed (hashed when that would not fit)."""
    key = KEY_PREFIX + first_key
    if len(key) <= _KEY_MAX:
        return key
    return f"{KEY_PREFIX}sha256:{hashlib.sha256(first_key.encode()).hexdigest()}"


def conditions_of_outcome(*, dead: bool, refused: bool, invalid_address: bool) -> frozenset[str]:
    """The conditions a worker's final outcome meets."""
    met = {"dead"} if dead else set()
    if refused:
        met.add("refused")
    if invalid_address:
        met.add("invalid_address")
    return frozenset(met)


def conditions_of_report(status: str, *, dead_address: bool) -> frozenset[str]:
    """The conditions a provider's report meets (a delivered or deferred report meets none)."""
    met = {status} if status in REPORTED else set()
    if dead_address:
        met.add("invalid_address")
    return frozenset(met)


@dataclass(frozen=True)
class Call:
    """Whether a failure calls the fallback: ``because`` names the condition; ``not_planned`` says
    why a matching failure does not (``outside_window``, ``delivered``)."""

    because: str | None
    not_planned: str | None = None


def call(
    rule: FallbackRule,
    conditions: Collection[str],
    *,
    reported: bool,
    sent_at: datetime | None,
    delivered: bool,
    now: datetime,
) -> Call | None:
    """What ``conditions`` learnt at ``now`` mean for the rule; None when the rule does not list them.

    ``reported``: learnt from the provider's report (the window applies, from ``sent_at``);
    ``delivered``: the provider reported the first delivery delivered.
    """
    matched = [c for c in rule.on if c in conditions]
    if not matched:
        return None
    if delivered:
        return Call(None, "delivered")
    if reported and sent_at is not None and now - sent_at > rule.within:
        return Call(None, "outside_window")
    return Call(matched[0])


def decide(
    rule: FallbackRule,
    kind: str,
    recipient: RecipientState,
    policy: PlanningPolicy,
    now: datetime,
    counted: Sequence[datetime],
) -> checks.Decision:
    """The rule chain for the fallback, as for an ad-hoc send wanted now: the opt-outs and address of
    its channel, quiet hours in the recipient's zone, lateness and the cap. ``counted``: sorted
    instants counted against the cap on the fallback's channel."""
    facts = checks.Facts(
        kind=kind,
        channel=rule.channel,
        audience=recipient.audience(rule.channel),
        at=now,
        now=now,
        counted=counted,
    )
    return checks.decide(policy, facts)


def first_entry_detail(
    first_id: int, because: str, decision: checks.Decision, policy: PlanningPolicy, kind: str, now: datetime
) -> dict[str, Any]:
    """The fallback's first timeline entry: whose fallback it is, why, and what the chain said."""
    detail: dict[str, Any] = {
        "source": "fallback",
        "fallback_for": first_id,
        "because": because,
        "requested_at": now.isoformat(),
    }
    if policy.is_critical(kind):
        detail["critical"] = True
    detail.update(decision.detail())
    return detail


def describe(conditions: Iterable[str]) -> str:
    return ", ".join(sorted(conditions))
