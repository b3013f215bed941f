"""What the rules know of one recipient: zone, addresses, opt-outs, invalid addresses, quiet hours.

Every place that decides (the planner run, ad-hoc notify, the worker's re-check, explain, simulate)
builds a :class:`RecipientState` from the stored row with
:func:`planner.store.recipient_facts.recipient_state` and asks it for the channel's
:class:`~planner.core.checks.Audience`: one mapping from a recipient to what the rules read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from planner.core.checks import Audience
from planner.core.quiet_hours import QuietHours

CHANNELS = ("email", "sms")


def kinds_opted_out(opt_outs: Iterable[str] | None, channel: str) -> frozenset[str]:
    """The kinds of ``channel`` among stored "kind/channel" opt-outs."""
    suffix = f"/{channel}"
    return frozenset(item.removesuffix(suffix) for item in opt_outs or () if item.endswith(suffix))


# Built per recipient of a chunk: slotted and not ``frozen`` (see planner.core.checks). Nothing
# assigns to the fields after construction.
@dataclass(slots=True)
class RecipientState:
    id: int
    external_id: str
    timezone: str
    email: str | None
    phone: str | None
    #: Per channel, the recipient's own window; a channel missing here has the service default.
    quiet_hours: Mapping[str, QuietHours]
    #: Channels opted out of as a whole.
    opted_out: frozenset[str]
    #: Per channel, why its address was marked invalid.
    invalid: Mapping[str, str]
    #: Per channel, the kinds opted out of.
    opted_out_kinds: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: Per channel, the audience built from the fields above (a recipient's subscriptions share it).
    _audiences: dict[str, Audience] = field(default_factory=dict, init=False, repr=False, compare=False)

    def address(self, channel: str) -> str | None:
        return self.email if channel == "email" else self.phone

    def audience(self, channel: str) -> Audience:
        """What the rule chain (:mod:`planner.core.checks`) needs of this recipient on ``channel``."""
        found = self._audiences.get(channel)
        if found is None:
            found = self._audiences[channel] = Audience(
                timezone=self.timezone,
                address=self.address(channel),
                opted_out=channel in self.opted_out,
                invalid=self.invalid.get(channel),
                opted_out_kinds=self.opted_out_kinds.get(channel, frozenset()),
                quiet_hours=self.quiet_hours.get(channel),
            )
        return found
