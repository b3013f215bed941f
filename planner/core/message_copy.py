"""The copy of a message kept with its delivery, so a person can see what was sent: bounded in size.

A copy holds the subject, the text and HTML bodies and the headers the service added (such as
``List-Unsubscribe``), and for a digest the ids of the events it listed. The text parts share
``max_bytes`` (UTF-8): a part smaller than its share is kept whole and leaves the rest to the
others, so a long HTML body is cut before a short text body loses a byte. A cut part ends with
:func:`cut_marker`, which says how much of it was kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Room left at the end of a cut part for its marker (the longest marker is shorter).
MARKER_ROOM = 96


def cut_marker(kept: int, whole: int) -> str:
    """What ends a part that was cut: how many of its bytes were kept."""
    return f"\n[… cut: {kept:,} of {whole:,} bytes kept (PLANNER_STORED_MESSAGE_MAX_BYTES)]"


@dataclass(frozen=True)
class DigestListing:
    """The events a digest listed (oldest first), and how many more it only counted."""

    event_ids: tuple[int, ...]
    more: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"event_ids": list(self.event_ids), "more": self.more}


@dataclass(frozen=True)
class MessageCopy:
    """What was handed to the provider, as kept: ``cut`` when a part was shortened to fit."""

    subject: str | None
    text: str | None
    html: str | None
    headers: Mapping[str, str] = field(default_factory=dict)
    digest: DigestListing | None = None
    #: The UTF-8 size of the subject, bodies and headers as rendered, before any cut.
    size: int = 0
    cut: bool = False


def bounded_copy(
    subject: str | None,
    text: str | None,
    html: str | None,
    headers: Mapping[str, str],
    digest: DigestListing | None,
    max_bytes: int,
) -> MessageCopy:
    """The message's parts cut to share ``max_bytes`` between them (see the module's docstring)."""
    header_names = sorted(headers)
    parts: list[str | None] = [subject, text, html, *(headers[name] for name in header_names)]
    sizes = [0 if part is None else len(part.encode()) for part in parts]
    size = sum(sizes)
    if size <= max_bytes:
        return MessageCopy(subject, text, html, dict(headers), digest, size, cut=False)
    shares = _shares(sizes, max_bytes)
    kept = [
        part if part is None or share >= whole else _cut(part, share, whole)
        for part, share, whole in zip(parts, shares, sizes, strict=True)
    ]
    cut_headers = dict(zip(header_names, (k or "" for k in kept[3:]), strict=True))
    return MessageCopy(kept[0], kept[1], kept[2], cut_headers, digest, size, cut=True)


def _shares(sizes: Sequence[int], budget: int) -> list[int]:
    """Each part's share of ``budget``: the smallest parts are kept whole while they fit in an even
    share of what is left; the others split the rest evenly."""
    shares = list(sizes)
    left, waiting = budget, len(sizes)
    for index in sorted(range(len(sizes)), key=lambda i: sizes[i]):
        even = left // waiting
        if sizes[index] > even:
            for rest in sorted(range(len(sizes)), key=lambda i: sizes[i])[len(sizes) - waiting :]:
                shares[rest] = left // waiting
            return shares
        left -= sizes[index]
        waiting -= 1
    return shares


def _cut(part: str, share: int, whole: int) -> str:
    """``part`` cut to ``share`` bytes, marker included, on a character boundary."""
    room = max(share - MARKER_ROOM, 0)
    head = part.encode()[:room].decode(errors="ignore")
    return head + cut_marker(len(head.encode()), whole)
