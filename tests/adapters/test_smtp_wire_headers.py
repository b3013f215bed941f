"""List-Unsubscribe, List-Unsubscribe-Post and Message-ID as the bytes a real aiosmtpd server
received: RFC 2369 angle-bracketed URLs in ASCII, never RFC 2047 encoded-words, folded only at
the space after a comma, no line over 998 octets. Read without the email package."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from adapters import Message, PermanentError
from adapters.smtp import SmtpAdapter

if TYPE_CHECKING:
    from tests.adapters.conftest import SmtpServer

TOKEN_CHARS = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-."


def token(length: int) -> str:
    return (TOKEN_CHARS * (length // len(TOKEN_CHARS) + 1))[:length]


def long_base(length: int) -> str:
    start, end = "https://unsubscribe.", ".example.com"
    return start + "a" * (length - len(start) - len(end)) + end


def raw_field(raw: bytes, name: str) -> list[bytes]:
    """The physical lines of the one header field called ``name`` in a raw message."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    fields: list[list[bytes]] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1].append(line)
        else:
            fields.append([line])
    found = [f for f in fields if f[0].split(b":", 1)[0].lower() == name.lower().encode()]
    assert len(found) == 1, (name, head)
    return found[0]


def unfolded(lines: list[bytes], name: str) -> bytes:
    """RFC 5322 unfolding (drop each CRLF before whitespace), without the field name."""
    return b"".join(lines)[len(name) + 2 :]


def send(server: SmtpServer, message: Message) -> bytes:
    adapter = SmtpAdapter(host=server.host, port=server.port, from_address="p@example.com", security="none")
    adapter.send(message)
    [mail] = server.recorder.by_message_id(message.message_id)
    return mail.raw


CASES = {
    "long-token": (f"https://planner.example.com/u/{token(160)}", None),
    "long-token-with-mailto": (f"https://planner.example.com/u/{token(160)}", "unsubscribe@example.com"),
    "200-char-base-url-with-mailto": (f"{long_base(200)}/u/{token(60)}", "unsubscribe@example.com"),
    "short-with-mailto": ("https://p.example/u/abc", "u@p.example"),
}


@pytest.mark.parametrize(("link", "mailto"), CASES.values(), ids=CASES.keys())
def test_list_unsubscribe_goes_out_as_angle_bracketed_ascii_urls(
    smtp_server: SmtpServer, make_message: Callable[..., Message], link: str, mailto: str | None
) -> None:
    targets = [f"<{link}>"]
    if mailto is not None:
        targets.append(f"<mailto:{mailto}?subject=unsubscribe%20{link.rsplit('/', 1)[1]}>")
    headers = {"List-Unsubscribe": ", ".join(targets), "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    raw = send(smtp_server, make_message("email", headers=headers))

    lines = raw_field(raw, "List-Unsubscribe")
    assert unfolded(lines, "List-Unsubscribe") == ", ".join(targets).encode()
    assert all(line.isascii() and b"=?" not in line and len(line) <= 998 for line in lines), lines
    # Folded, if at all, only at the space after a comma between two URLs.
    assert all(line.endswith(b">,") for line in lines[:-1]), lines
    assert all(line.startswith(b" <") for line in lines[1:]), lines
    assert len(lines) == len(targets) or len(b"".join(lines)) <= 78, lines
    assert raw_field(raw, "List-Unsubscribe-Post") == [b"List-Unsubscribe-Post: List-Unsubscribe=One-Click"]


def test_message_id_goes_out_whole_on_one_line(
    smtp_server: SmtpServer, make_message: Callable[..., Message]
) -> None:
    message_id = f"<delivery-7.{token(120)}@planner.example.com>"
    raw = send(smtp_server, make_message("email", message_id=message_id))
    assert raw_field(raw, "Message-ID") == [f"Message-ID: {message_id}".encode()]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("List-Unsubscribe", "<https://planner.example.com/u/a b>"),  # a space inside the URL
        ("List-Unsubscribe", "<https://plänner.example.com/u/abc>"),  # not ASCII
        ("List-Unsubscribe", "https://planner.example.com/u/abc"),  # no angle brackets
        ("List-Unsubscribe", f"<https://planner.example.com/u/{token(1000)}>"),  # over 998 octets
        ("Message-ID", "<delivery-1 dk@planner.local>"),
    ],
)
def test_a_header_that_cannot_be_written_faithfully_is_refused_before_connecting(
    make_message: Callable[..., Message], name: str, value: str
) -> None:
    adapter = SmtpAdapter(host="127.0.0.1", port=1, from_address="p@example.com", security="none")
    fields = {"message_id": value} if name == "Message-ID" else {"headers": {name: value}}
    with pytest.raises(PermanentError, match=name) as excinfo:
        adapter.send(make_message("email", **fields))
    assert not excinfo.value.invalid_address
