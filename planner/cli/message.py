"""``planner deliveries show``: what was sent, from the copy kept with the delivery: its subject and
headers as lines of the show's output, then each body as it was sent."""

from __future__ import annotations

import re
import sys
from typing import Any

from planner.cli.common import Grid, key_values, out

#: Control characters other than line breaks and tabs: a message's text comes from template data
#: that API clients send, and a terminal would act on an escape sequence in it.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

NOT_KEPT = (
    "no copy: not sent yet, sent before copies were kept, kept none (PLANNER_STORED_MESSAGE_MAX_BYTES=0) "
    "or dropped after PLANNER_STORED_MESSAGE_RETENTION"
)


def message_grid(copy: dict[str, Any] | None) -> Grid:
    """The kept copy's subject, size, headers and digest events (or why there is none)."""
    if copy is None:
        return key_values("message", {"kept": NOT_KEPT})
    size = f"{copy['size']:,} bytes"
    if copy["cut"]:
        size += ", cut to fit PLANNER_STORED_MESSAGE_MAX_BYTES (each cut part ends saying so)"
    fields: dict[str, Any] = {"kept at": copy["kept_at"], "size": size, "subject": copy["subject"]}
    fields |= dict(copy["headers"])
    if copy["digest"] is not None:
        fields["digest events"] = digest_words(copy["digest"])
    return key_values("message", {k: shown(v) if isinstance(v, str) else v for k, v in fields.items()})


def print_bodies(copy: dict[str, Any] | None) -> None:
    """Each body of the kept copy as it was sent (the HTML as source: never rendered here)."""
    for part, title in (("text", "text body"), ("html", "HTML body (source)")):
        if copy is not None and copy[part] is not None:
            _section(title, shown(copy[part]))


def digest_words(digest: dict[str, Any]) -> str:
    ids = digest["event_ids"]
    words = f"{len(ids)} listed" + (f" (ids {', '.join(str(i) for i in ids)})" if ids else "")
    return words + (f", {digest['more']} more counted" if digest["more"] else "")


def shown(text: str) -> str:
    """``text`` with control characters written as escapes (``\\x1b``), so a terminal prints them."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", text)


def _section(title: str, body: str) -> None:
    if out.is_terminal:
        out.rule(title, align="left")
        out.print(body, markup=False, highlight=False, emoji=False, soft_wrap=True)
        return
    sys.stdout.write(f"\n--- {title} ---\n{body}\n")
    sys.stdout.flush()
