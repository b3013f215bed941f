"""Errors an adapter raises, classified so the caller knows whether to retry.

Adapters translate every provider failure into exactly one of these, so the worker never has to
know SMTP reply codes or Twilio error numbers.
"""

from __future__ import annotations

from typing import Any


class AdapterError(Exception):
    """Base class of every error an adapter raises on purpose."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class TransientError(AdapterError):
    """The send failed but may succeed later; ``retry_after`` is the provider's hint in seconds."""

    def __init__(self, reason: str, retry_after: float | None = None, *, code: str | None = None) -> None:
        self.retry_after = retry_after
        self.code = code
        super().__init__(reason)

    # RQ pickles exceptions across processes; the default reduce would drop the keyword state.
    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (self.reason,), self.__dict__))


class PermanentError(AdapterError):
    """Retrying cannot help.

    ``invalid_address`` means the address itself is invalid or unreachable, so the caller should
    mark the recipient's channel invalid instead of just failing this one delivery. ``opted_out``
    means the recipient told the provider to stop (an SMS "STOP" reply): the caller should record
    the opt-out, and never send on that channel again until the recipient opts back in.
    """

    def __init__(
        self, reason: str, invalid_address: bool = False, *, code: str | None = None, opted_out: bool = False
    ) -> None:
        self.invalid_address = invalid_address
        self.opted_out = opted_out
        self.code = code
        super().__init__(reason)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (self.reason,), self.__dict__))


class AdapterConfigError(AdapterError):
    """The adapter's settings are unusable: a bad option value, or credentials the provider rejects.

    Raised by ``from_settings`` and constructors, and by ``send`` when the provider proves the
    configuration wrong (e.g. authentication refused) — a delivery must not be burned for that.
    """

    def __init__(self, reason: str, *, option: str | None = None) -> None:
        self.option = option
        super().__init__(reason)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (self.reason,), self.__dict__))


class OutcomeUnknown(AdapterError):
    """The provider may or may not have accepted the message: do not resend it blindly.

    Raised by ``send`` when the request was handed over and then the call timed out or the
    connection dropped before an answer: for SMTP, the message's final ``.`` had been sent
    (``stage="data"``); for an HTTP API, the whole request body had been written
    (``stage="response"``). Raised by ``lookup`` (see :class:`adapters.base.LookupAdapter`)
    when the provider could not say whether it has the message (``stage="lookup"``): the
    question is still open, so that is no licence to resend either. ``retry_after`` is the
    provider's hint in seconds before asking again, when it gave one.
    """

    def __init__(self, reason: str, *, stage: str, retry_after: float | None = None) -> None:
        self.stage = stage
        self.retry_after = retry_after
        super().__init__(reason)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (self.reason,), self.__dict__))


def _rebuild(cls: type[AdapterError], args: tuple[Any, ...], state: dict[str, Any]) -> AdapterError:
    error = cls.__new__(cls)
    AdapterError.__init__(error, *args)
    error.__dict__.update(state)
    return error
