"""Prints a one-line summary of each message, for local runs."""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping
from typing import ClassVar, Self, TextIO

from adapters.base import Message, SendResult, check_channel
from adapters.options import OptionReader

_PREVIEW = 80
_STREAMS = frozenset({"stdout", "stderr"})


def _one_line(text: str, limit: int = _PREVIEW) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class ConsoleAdapter:
    name: ClassVar[str] = "console"
    channels: ClassVar[frozenset[str]] = frozenset({"email", "sms"})
    options: ClassVar[frozenset[str]] = frozenset({"stream"})
    #: Nothing leaves the machine, so no provider call to bound (see :class:`adapters.base.Adapter`).
    deadline: float | None = None

    def __init__(self, *, stream: TextIO | None = None) -> None:
        # None means "sys.stdout at write time", so output follows later redirection (and capsys).
        self._stream = stream
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, options: Mapping[str, str]) -> Self:
        read = OptionReader(cls.name, options, cls.options)
        choice = read.get_choice("stream", _STREAMS, "stdout")
        return cls(stream=sys.stderr if choice == "stderr" else None)

    def send(self, message: Message) -> SendResult:
        check_channel(self, message)
        subject = f" subject={_one_line(message.subject)!r}" if message.subject else ""
        line = (
            f"[{message.channel}] {message.scheduled_at:%Y-%m-%dT%H:%M:%SZ} delivery={message.delivery_id} "
            f"kind={message.kind} to={message.to}{subject} text={_one_line(message.text)!r}\n"
        )
        stream = self._stream if self._stream is not None else sys.stdout
        with self._lock:
            stream.write(line)
            stream.flush()
        return SendResult(provider_message_id=f"console-{message.delivery_id}")

    def close(self) -> None:
        """The stream belongs to whoever passed it in; never close stdout."""
