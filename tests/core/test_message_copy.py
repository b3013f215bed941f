"""The kept copy of a message: whole when it fits, cut fairly with a marker when it does not."""

from __future__ import annotations

from planner.core.message_copy import DigestListing, bounded_copy

HEADERS = {
    "List-Unsubscribe": "<https://planner.example.com/u/abc>",
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
}


def _bytes(*parts: str | None) -> int:
    return sum(len(p.encode()) for p in parts if p is not None)


def test_a_message_that_fits_is_kept_whole() -> None:
    digest = DigestListing((4, 5), more=3)
    copy = bounded_copy("Hi", "body", "<p>body</p>", HEADERS, digest, 65536)
    assert (copy.subject, copy.text, copy.html, dict(copy.headers)) == ("Hi", "body", "<p>body</p>", HEADERS)
    assert copy.digest == digest and copy.digest.as_dict() == {"event_ids": [4, 5], "more": 3}
    assert not copy.cut and copy.size == _bytes("Hi", "body", "<p>body</p>", *HEADERS.values())


def test_the_longest_part_is_cut_first_and_says_how_much_was_kept() -> None:
    html = "<p>" + "é" * 50_000 + "</p>"  # two bytes a character: cut on a character boundary
    copy = bounded_copy("Subject", "short text", html, HEADERS, None, 4096)
    assert copy.cut and copy.size == _bytes("Subject", "short text", html, *HEADERS.values())
    assert (copy.subject, copy.text, dict(copy.headers)) == ("Subject", "short text", HEADERS)
    assert copy.html is not None and copy.html.startswith("<p>é")
    kept = len(copy.html.split("\n[… cut: ")[0].encode())
    whole = len(html.encode())
    assert copy.html.endswith(f"[… cut: {kept:,} of {whole:,} bytes kept (PLANNER_STORED_MESSAGE_MAX_BYTES)]")
    assert _bytes(copy.subject, copy.text, copy.html, *copy.headers.values()) <= 4096


def test_two_long_bodies_share_what_is_left() -> None:
    text, html = "t" * 100_000, "h" * 300_000
    copy = bounded_copy("S", text, html, {}, None, 10_000)
    assert copy.text is not None and copy.html is not None
    assert abs(len(copy.text.encode()) - len(copy.html.encode())) < 10
    assert _bytes(copy.subject, copy.text, copy.html) <= 10_000
    assert copy.text.startswith("t" * 4000) and copy.html.startswith("h" * 4000)


def test_an_sms_has_a_text_only() -> None:
    copy = bounded_copy(None, "Your code: 123456", None, {}, None, 1024)
    assert (copy.subject, copy.text, copy.html, copy.cut) == (None, "Your code: 123456", None, False)
