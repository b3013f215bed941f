"""Writes messages to JSON Lines files instead of sending them (development, dry runs, audits)."""

from __future__ import annotations

import fcntl
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, ClassVar, Self

from adapters.base import Message, SendResult, check_channel
from adapters.options import OptionReader, config_error

DEFAULT_DIRECTORY = "./outbox"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def iso_utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} is naive; expected an aware datetime")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class FileAdapter:
    name: ClassVar[str] = "file"
    channels: ClassVar[frozenset[str]] = frozenset({"email", "sms"})
    options: ClassVar[frozenset[str]] = frozenset({"directory"})
    #: Nothing leaves the machine, so no provider call to bound (see :class:`adapters.base.Adapter`).
    deadline: float | None = None

    def __init__(
        self, *, directory: str | Path = DEFAULT_DIRECTORY, clock: Callable[[], datetime] = _utcnow
    ) -> None:
        self.directory = Path(directory)
        if self.directory.exists() and not self.directory.is_dir():
            raise config_error(self.name, "directory", str(directory), "a directory, not a file")
        self._clock = clock

    @classmethod
    def from_settings(cls, options: Mapping[str, str]) -> Self:
        read = OptionReader(cls.name, options, cls.options)
        return cls(directory=read.get("directory", DEFAULT_DIRECTORY) or DEFAULT_DIRECTORY)

    def __repr__(self) -> str:
        return f"FileAdapter(directory={str(self.directory)!r})"

    def path_for(self, channel: str) -> Path:
        return self.directory / f"{channel}.jsonl"

    def send(self, message: Message) -> SendResult:
        check_channel(self, message)
        record = {
            "delivery_id": message.delivery_id,
            "dedup_key": message.dedup_key,
            "recipient_id": message.recipient_id,
            "kind": message.kind,
            "channel": message.channel,
            "scheduled_at": iso_utc(message.scheduled_at),
            "sent_at": iso_utc(self._clock()),
            "to": message.to,
            "subject": message.subject,
            "body": message.text,
            "message_id": message.message_id,
            # What an email adapter would add to the message, List-Unsubscribe among them.
            "headers": dict(message.headers),
        }
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        with self._open(message.channel) as out:
            # Workers in other processes append to the same file; the lock keeps lines whole.
            fcntl.flock(out, fcntl.LOCK_EX)
            try:
                out.write(line)
                out.flush()
            finally:
                fcntl.flock(out, fcntl.LOCK_UN)
        return SendResult(provider_message_id=f"file-{message.delivery_id}")

    def _open(self, channel: str) -> BinaryIO:
        path = self.path_for(channel)
        try:
            return path.open("ab")
        except FileNotFoundError:  # the directory is made on the first message (or again if removed)
            self.directory.mkdir(parents=True, exist_ok=True)
            return path.open("ab")

    def close(self) -> None:
        """Nothing to release: the file is opened per message so it can be rotated freely."""
