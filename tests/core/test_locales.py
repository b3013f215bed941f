"""BCP 47 tags (RFC 5646): which are well formed, their canonical case, and RFC 4647's lookup chain;
the one locale rule of every door (planner.core.validation.locale)."""

from __future__ import annotations

import pytest

from planner.core.locales import canonical, is_well_formed, lookup_chain
from planner.core.validation import locale
from planner.errors import InvalidInput

WELL_FORMED = [
    "fr", "pt-BR", "zh-Hant-TW", "sr-Latn-RS", "es-419", "de-CH-1996", "sl-rozaj-biske",
    "en-US-u-ca-gregory", "zh-yue-HK", "haw", "en-a-bbb-x-a-ccc", "qaa-Qaaa-QM-x-southern",
]  # fmt: skip
ILL_FORMED = [
    "", "f", "pt_BR", "en-", "-en", "en--US", "en-12", "en-a", "en-x", "x-private", "i-klingon",
    "abcd", "english", "abcdefghi", "en-US-u", "de-1996-1996", "en-u-ca-u-nu", "en-US\n", " fr",
    "fr ", "fr\x00",
    "en-abcdefghi", "zh-Hant-Hans", "e" * 36, 42, None, ["fr"],
]  # fmt: skip


@pytest.mark.parametrize("tag", WELL_FORMED)
def test_well_formed_tags_are_taken(tag: str) -> None:
    assert is_well_formed(tag)
    assert locale(tag) == canonical(tag)


@pytest.mark.parametrize("tag", ILL_FORMED)
def test_ill_formed_tags_are_refused_naming_the_field(tag: object) -> None:
    assert not is_well_formed(tag)
    with pytest.raises(InvalidInput) as refused:
        locale(tag, "locale")
    assert refused.value.field == "locale"
    assert "BCP 47 language tag" in str(refused.value)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("PT-br", "pt-BR"),
        ("zh-hant-tw", "zh-Hant-TW"),
        ("SR-LATN-rs", "sr-Latn-RS"),
        ("de-ch-1996", "de-CH-1996"),
        ("EN-us-U-CA-Gregory", "en-US-u-ca-gregory"),  # extension subtags stay lower case
        ("en-x-AB", "en-x-ab"),  # a private use subtag of two letters is not a region
    ],
)
def test_tags_are_stored_in_canonical_case(given: str, stored: str) -> None:
    assert locale(given) == stored


@pytest.mark.parametrize(
    ("tag", "chain"),
    [
        ("pt-BR", ["pt-BR", "pt"]),
        ("fr", ["fr"]),
        ("zh-Hant-TW", ["zh-Hant-TW", "zh-Hant", "zh"]),
        ("de-CH-1996", ["de-CH-1996", "de-CH", "de"]),
        # RFC 4647 3.4: a singleton left at the end goes with the subtag after it.
        ("en-US-u-ca-gregory", ["en-US-u-ca-gregory", "en-US-u-ca", "en-US", "en"]),
        ("en-a-bbb-x-a-ccc", ["en-a-bbb-x-a-ccc", "en-a-bbb", "en"]),
        ("PT-br", ["pt-BR", "pt"]),
    ],
)
def test_the_lookup_chain_drops_subtags_from_the_right(tag: str, chain: list[str]) -> None:
    assert lookup_chain(tag) == chain
