"""BCP 47 language tags: which are well formed, their canonical case, and the lookup chain.

A recipient's ``locale`` is a language tag as RFC 5646 defines one (its ``langtag`` production):
a language (2-3 letters, perhaps with extended subtags; the 5-8 letter form is reserved for
registrations never made, so ``english`` is refused, not stored), then an optional script (4
letters), region (2 letters or 3 digits), variants, extensions (a singleton other than ``x``
and subtags of 2-8) and a private use part (``x-`` and subtags of 1-8). Tags compare without
regard to case; the canonical case is RFC 5646's: ``zh-Hant-TW``, ``pt-BR``, ``de-CH-1996``.

The lookup chain is RFC 4647's "lookup": the tag, then the tag with its last subtag removed, and so
on (a singleton left at the end goes with the subtag after it): ``pt-BR`` -> ``pt``;
``zh-Hant-TW`` -> ``zh-Hant`` -> ``zh``.
"""

from __future__ import annotations

import re

#: The longest tag stored (``recipient.locale``); RFC 5646 asks for at least 35 characters.
MAX_LENGTH = 35

_ALNUM = "[A-Za-z0-9]"
_LANGTAG = re.compile(
    r"(?P<language>[A-Za-z]{2,3}(?:-[A-Za-z]{3}){0,3})"
    r"(?:-(?P<script>[A-Za-z]{4}))?"
    r"(?:-(?P<region>[A-Za-z]{2}|[0-9]{3}))?"
    rf"(?P<variants>(?:-(?:{_ALNUM}{{5,8}}|[0-9]{_ALNUM}{{3}}))*)"
    rf"(?P<extensions>(?:-[0-9A-WYZa-wyz](?:-{_ALNUM}{{2,8}})+)*)"
    rf"(?P<private>-[xX](?:-{_ALNUM}{{1,8}})+)?"
)

EXPECTED = "a BCP 47 language tag such as 'fr', 'pt-BR' or 'zh-Hant-TW'"


def is_well_formed(tag: object) -> bool:
    """Whether ``tag`` is a well-formed BCP 47 language tag of at most :data:`MAX_LENGTH` characters,
    with no variant or extension singleton repeated (RFC 5646, 2.2.9)."""
    if not isinstance(tag, str) or len(tag) > MAX_LENGTH:
        return False
    match = _LANGTAG.fullmatch(tag)
    if match is None:
        return False
    variants = match["variants"].lower().split("-")[1:]
    singletons = [s for s in match["extensions"].lower().split("-")[1:] if len(s) == 1]
    return len(set(variants)) == len(variants) and len(set(singletons)) == len(singletons)


def canonical(tag: str) -> str:
    """The tag in RFC 5646's canonical case: language and most subtags lower case, the script in
    title case, the region upper case (what a well-formed tag is stored as)."""
    parts = tag.split("-")
    shown = [parts[0].lower()]
    extension = False  # after a singleton, every subtag is the extension's (or private use)
    for part in parts[1:]:
        extension = extension or len(part) == 1
        if not extension and len(part) == 4 and part.isalpha():
            shown.append(part.title())
        elif not extension and len(part) == 2:
            shown.append(part.upper())
        else:
            shown.append(part.lower())
    return "-".join(shown)


def lookup_chain(tag: str) -> list[str]:
    """RFC 4647's lookup fallback of a well-formed tag, most specific first, in canonical case:
    ``zh-Hant-TW`` -> ``["zh-Hant-TW", "zh-Hant", "zh"]``."""
    parts = canonical(tag).split("-")
    chain = []
    while parts:
        chain.append("-".join(parts))
        parts.pop()
        while parts and len(parts[-1]) == 1:
            parts.pop()  # a singleton means nothing without the subtag after it
    return chain
