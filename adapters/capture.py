"""Keeps messages in memory so tests can assert on what would have been sent."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import ClassVar, Self

from adapters.base import Message, SendResult, check_channel
from adapters.options import OptionReader


class CaptureAdapter:
    """``sent`` holds successful sends and ``attempts`` every call.

    ``fail_with`` is called before a send is recorded; raising from it simulates a failure.
    """

    name: ClassVar[str] = "capture"
    channels: ClassVar[frozenset[str]] = frozenset({"email", "sms"})
    options: ClassVar[frozenset[str]] = frozenset()
    #: Nothing leaves the machine, so no provider call to bound (see :class:`adapters.base.Adapter`).
    deadline: float | None = None

    def __init__(self, *, fail_with: Callable[[Message], None] | None = None) -> None:
        self.fail_with = fail_with
        self.sent: list[Message] = []
        self.attempts: list[Message] = []
        self.closed = False
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, options: Mapping[str, str]) -> Self:
        OptionReader(cls.name, options, cls.options)
        return cls()

    def send(self, message: Message) -> SendResult:
        check_channel(self, message)
        with self._lock:
            self.attempts.append(message)
        hook = self.fail_with
        if hook is not None:
            hook(message)
        with self._lock:
            self.sent.append(message)
        return SendResult(provider_message_id=f"capture-{message.delivery_id}")

    def clear(self) -> None:
        with self._lock:
            self.sent.clear()
            self.attempts.clear()

    def close(self) -> None:
        self.closed = True
