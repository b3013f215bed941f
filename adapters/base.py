"""The protocol between the planner and its delivery adapters."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import ClassVar, Literal, Protocol, Self, TypeGuard, cast, get_args

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
    """What every adapter plugin provides. ``send`` raises only :mod:`adapters.errors` errors.

    Optionally, ``deadline: float | None``: the most seconds one provider call (``send``, or
    ``lookup``) may take, everything included, or None when the adapter does not leave the
    machine. A caller holding a lease on the delivery keeps the lease longer than this; read it
    with :func:`call_deadline`, which also answers None for an adapter without the attribute.
    A call that overruns its deadline raises :class:`~adapters.errors.TransientError` if the
    provider cannot have the message yet, :class:`~adapters.errors.OutcomeUnknown` if it may.
    """

    name: ClassVar[str]
    channels: ClassVar[frozenset[str]]

    @classmethod
    def from_settings(cls, options: Mapping[str, str]) -> Self: ...

    def send(self, message: Message) -> SendResult: ...

    def close(self) -> None: ...


def call_deadline(adapter: Adapter) -> float | None:
    """The adapter's ``deadline`` in seconds, or None if it declares none (or no usable one)."""
    value = getattr(adapter, "deadline", None)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < float("inf"):
        return None
    return float(value)


def check_channel(adapter: Adapter, message: Message) -> None:
    """Refuse a message on a channel the adapter cannot serve (a routing bug, never the address)."""
    if message.channel not in adapter.channels:
        raise PermanentError(
            f"adapter {adapter.name!r} serves {sorted(adapter.channels)}, not channel {message.channel!r}"
        )


class BatchingAdapter(Adapter, Protocol):
    """An adapter that can keep one provider session open for the sends of a batch.

    Optional: the planner calls ``start_batch`` before a worker's batch and ``end_batch`` after
    it (see :func:`batch_session`). Outside a batch, ``send`` must work on its own.
    """

    def start_batch(self) -> None: ...

    def end_batch(self) -> None: ...


@contextmanager
def batch_session(adapter: Adapter) -> Iterator[None]:
    """Within it, an adapter that supports batches reuses one provider session; ``end_batch``
    runs however the batch ends (and must not raise: every outcome is already recorded)."""
    start = getattr(adapter, "start_batch", None)
    if start is None:
        yield
        return
    start()
    try:
        yield
    finally:
        cast(BatchingAdapter, adapter).end_batch()


class LookupAdapter(Adapter, Protocol):
    """An adapter that can ask its provider whether it already accepted a message.

    Optional (see :func:`can_lookup`). For use after :class:`~adapters.errors.OutcomeUnknown`,
    before any resend: ``lookup(message, since)`` returns the provider's record (its message id
    and status) if it accepted ``message`` at or after ``since``, or None if it did not, in
    which case a resend is no duplicate. ``since`` is an aware instant no later than the first
    attempt's start, less an allowance for clock skew with the provider. ``lookup`` has the same
    ``deadline`` as ``send``; it raises ``OutcomeUnknown`` (``stage="lookup"``) when the provider
    cannot answer, which leaves the question open, and ``AdapterConfigError`` as ``send`` does.
    """

    def lookup(self, message: Message, since: datetime) -> SendResult | None: ...


def can_lookup(adapter: Adapter) -> TypeGuard[LookupAdapter]:
    return callable(getattr(adapter, "lookup", None))
