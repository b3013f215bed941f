"""The protocol between the planner and its delivery adapters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import ClassVar, Literal, Protocol, Self, get_args

from adapters.errors import PermanentError

Channel = Literal["email", "sms"]
CHANNELS: frozenset[str] = frozenset(get_args(Channel))


def _empty_metadata() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Message:
    """One delivery attempt's content, already rendered.

    ``message_id`` is chosen by the caller per delivery and reused on every retry, so a provider
    or a human can recognise a duplicate of an earlier attempt.
    """

    delivery_id: int
    dedup_key: str
    recipient_id: str
    kind: str
    channel: Channel
    to: str
    subject: str | None
    text: str
    html: str | None
    scheduled_at: datetime
    message_id: str
    # Left out of the hash (a mapping has none) so messages can still go in sets.
    metadata: Mapping[str, str] = field(default_factory=_empty_metadata, hash=False)
    #: Extra headers an email adapter writes (List-Unsubscribe, List-Unsubscribe-Post).
    headers: Mapping[str, str] = field(default_factory=_empty_metadata, hash=False)

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ValueError(f"channel: {self.channel!r} is invalid; expected one of {sorted(CHANNELS)}")
        if self.scheduled_at.tzinfo is None or self.scheduled_at.utcoffset() is None:
            raise ValueError(f"scheduled_at: {self.scheduled_at!r} is naive; expected an aware UTC datetime")
        # Normalised so every adapter renders the same instant the same way, whatever zone it came in.
        object.__setattr__(self, "scheduled_at", self.scheduled_at.astimezone(UTC))
        # A private copy: the caller's dict must not be able to change a message after the fact.
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str
    detail: str | None = None


class Adapter(Protocol):
    """What every adapter plugin provides. ``send`` raises only :mod:`adapters.errors` errors."""

    name: ClassVar[str]
    channels: ClassVar[frozenset[str]]

    @classmethod
    def from_settings(cls, options: Mapping[str, str]) -> Self: ...

    def send(self, message: Message) -> SendResult: ...

    def close(self) -> None: ...


def check_channel(adapter: Adapter, message: Message) -> None:
    """Refuse a message on a channel the adapter cannot serve (a routing bug, never the address)."""
    if message.channel not in adapter.channels:
        raise PermanentError(
            f"adapter {adapter.name!r} serves {sorted(adapter.channels)}, not channel {message.channel!r}"
        )
