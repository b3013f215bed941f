"""Header fields whose syntax leaves no room for RFC 2047 encoded-words, written as their RFCs say.

Python's email package folds a long header it sees as unstructured text, and a token longer than
a line (a URL) comes out as ``=?utf-8?q?...?=`` encoded-words. RFC 2369 defines the List-* fields
as angle-bracketed URLs, and a mailbox provider cannot read an unsubscribe link hidden that way.
These fields are checked, folded here (only at the space after a comma) and passed through the
generator untouched; every other field keeps the package's own handling.
"""

from __future__ import annotations

import re
from email.policy import EmailPolicy
from typing import Any

#: RFC 2369: a comma-separated list of angle-bracketed URLs.
URL_LIST_FIELDS = frozenset(
    {"list-help", "list-unsubscribe", "list-subscribe", "list-post", "list-owner", "list-archive"}
)
#: RFC 8058's ``List-Unsubscribe=One-Click`` and RFC 5322's ``<id-left@id-right>``: one token each.
ATOM_FIELDS = frozenset({"list-unsubscribe-post", "message-id"})

#: RFC 5322 2.1.1: a line is at most 998 octets; 78 is the length folding aims for.
MAX_LINE = 998
FOLD_AT = 78

_URL = r"<[!-;=?-~]+>"  # printable ASCII except the brackets themselves; no spaces
_URL_LIST = re.compile(rf"\s*{_URL}(\s*,\s*{_URL})*\s*")
_MSG_ID = re.compile(r"<[!-;=?-~]+@[!-;=?-~]+>")
_ONE_LINE_ASCII = re.compile(r"[!-~]+(?: [!-~]+)*")


def wire_value(name: str, value: str) -> str:
    """``value`` as it goes on the wire after ``name: ``, folded with ``\\n `` where allowed.

    ``ValueError`` (naming the field and what was expected) when the value cannot be written
    faithfully: not ASCII, not of the field's syntax, or a line over 998 octets.
    """
    key = name.lower()
    if key in URL_LIST_FIELDS:
        if not _URL_LIST.fullmatch(value):
            raise ValueError(f"{name}: {value[:80]!r} is invalid; expected <URL>s separated by commas")
        return _fold_url_list(name, re.findall(_URL, value))
    pattern = _MSG_ID if key == "message-id" else _ONE_LINE_ASCII
    if not pattern.fullmatch(value):
        expected = "<id@domain> in printable ASCII" if key == "message-id" else "one line of ASCII"
        raise ValueError(f"{name}: {value[:80]!r} is invalid; expected {expected}")
    _check_length(name, f"{name}: {value}")
    return value


def _fold_url_list(name: str, urls: list[str]) -> str:
    lines = [f"{name}: {urls[0]}"]
    for url in urls[1:]:
        if len(lines[-1]) + len(", ") + len(url) <= FOLD_AT:
            lines[-1] += f", {url}"
        else:
            lines[-1] += ","
            lines.append(f" {url}")
    for line in lines:
        _check_length(name, line)
    return "\n".join(lines)[len(name) + 2 :]


def _check_length(name: str, line: str) -> None:
    if len(line) > MAX_LINE:
        raise ValueError(
            f"{name}: a line of {len(line)} characters is invalid; expected at most {MAX_LINE} "
            "(a URL cannot be folded)"
        )


class WirePolicy(EmailPolicy):
    """``email.policy.default`` except for the fields above, stored as the finished wire text.

    A field stored as a plain string is emitted as it is (``refold_source="none"``); the
    package's own fields are header objects and are folded as usual.
    """

    def __init__(self, **kw: Any) -> None:
        kw.setdefault("refold_source", "none")
        super().__init__(**kw)

    def header_store_parse(self, name: str, value: Any) -> tuple[str, Any]:
        if name.lower() in URL_LIST_FIELDS | ATOM_FIELDS:
            return name, wire_value(name, str(value))
        return super().header_store_parse(name, value)


WIRE_POLICY = WirePolicy()
