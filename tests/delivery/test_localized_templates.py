"""Templates in the recipient's language: the locale folder chosen per channel along the lookup chain
(pt-BR -> pt -> the default), and dates, times, numbers and plurals written by the Babel filters for
the recipient's locale and zone. Expected texts are CLDR's as a reader of each language writes
them, not recomputed here."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.delivery.formatting import FORMATTING_KEY, formatting
from planner.delivery.sandbox import MAX_STEPS
from planner.delivery.templating import Renderer, TemplateFailure, check_templates

KIND = "brief"
NNBSP, NBSP = "\u202f", "\xa0"  # CLDR's narrow no-break space (French groups, English AM) and no-break space


def folder(root: Path, name: str, files: dict[str, str]) -> None:
    (root / KIND / name).mkdir(parents=True, exist_ok=True)
    for leaf, text in files.items():
        (root / KIND / name / leaf).write_text(text, encoding="utf-8")


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    """Default (English) templates, a complete ``pt`` folder, ``pt-BR`` with email only, ``fr`` with
    no subject (so it cannot serve email), ``de-ch`` (lower case on disk) complete."""
    root = tmp_path / "templates"
    everything = {"email_subject.txt": "{lang} subject", "email.txt": "{lang} text", "sms.txt": "{lang} sms"}
    folder(
        root, "", {k: v.format(lang="default") for k, v in everything.items()} | {"email.html": "<p>html</p>"}
    )
    folder(root, "pt", {k: v.format(lang="pt") for k, v in everything.items()})
    folder(root, "pt-BR", {"email_subject.txt": "pt-BR subject", "email.txt": "pt-BR text"})
    folder(root, "fr", {"email.txt": "fr text", "sms.txt": "fr sms"})
    folder(root, "de-ch", {k: v.format(lang="de-CH") for k, v in everything.items()})
    folder(root, "not_a_tag", {"email.txt": "never"})
    return root


@pytest.mark.parametrize(
    ("locale", "channel", "text", "used"),
    [
        ("pt-BR", "email", "pt-BR text", "pt-BR"),
        ("pt-BR", "sms", "pt sms", "pt"),  # pt-BR has no SMS template: the chain goes on to pt
        ("pt-PT", "email", "pt text", "pt"),
        ("PT-br", "email", "pt-BR text", "pt-BR"),
        ("fr", "email", "default text", "en"),  # fr has no subject: not a half-French email
        ("fr", "sms", "fr sms", "fr"),
        ("de-CH-1996", "sms", "de-CH sms", "de-CH"),
        ("de", "sms", "default sms", "en"),
        ("ja", "email", "default text", "en"),
        (None, "email", "default text", "en"),
    ],
)
def test_the_templates_are_chosen_along_the_lookup_chain_per_channel(
    templates: Path, locale: str | None, channel: str, text: str, used: str
) -> None:
    rendered = Renderer(templates).render(KIND, channel, {}, locale=locale, zone="UTC")
    assert (rendered.text, rendered.locale) == (text, used)


def test_the_html_part_comes_from_the_chosen_language_only(templates: Path) -> None:
    renderer = Renderer(templates)
    assert renderer.render(KIND, "email", {}, locale=None).html == "<p>html</p>"
    # pt has no email.html: its email goes as text, never with the English HTML.
    assert renderer.render(KIND, "email", {}, locale="pt").html is None
    assert renderer.locales(KIND) == {"pt": "pt", "pt-br": "pt-BR", "fr": "fr", "de-ch": "de-ch"}


def test_the_default_templates_language_is_a_setting(templates: Path) -> None:
    rendered = Renderer(templates, default_locale="de").render(KIND, "email", {}, locale="ja")
    assert rendered.locale == "de"


def render_one(tmp_path: Path, body: str, locale: str | None, zone: str = "UTC", **data: object) -> str:
    """``body`` as the SMS template in ``locale``'s own folder (the default ones for None)."""
    folder(tmp_path, locale or "", {"sms.txt": body})
    return Renderer(tmp_path).render(KIND, "sms", {"data": data}, locale=locale, zone=zone).text


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("fr", "lundi 2 mars 2026"),
        ("de", "Montag, 2. März 2026"),
        ("en", "Monday, March 2, 2026"),
        ("pt-BR", "segunda-feira, 2 de março de 2026"),
        (None, "Monday, March 2, 2026"),
        ("qaa", "Monday, March 2, 2026"),  # well formed, unknown to CLDR: the default's formats
    ],
)
def test_localdate_writes_the_date_in_the_recipients_language(
    tmp_path: Path, locale: str | None, expected: str
) -> None:
    assert render_one(tmp_path, "{{ data.day | localdate('full') }}", locale, day="2026-03-02") == expected


def test_instants_are_shown_in_the_recipients_zone_across_dst(tmp_path: Path) -> None:
    body = "{{ data.at | localtime }} {{ data.at | localdate('short') }}|{{ data.summer | localtime }}"
    # 23:30 UTC is already the 3rd in Paris; in July Paris is two hours ahead, in March one.
    text = render_one(
        tmp_path, body, "fr", "Europe/Paris", at="2026-03-02T23:30:00Z", summer="2026-07-01T10:00Z"
    )
    assert text == "00:30 03/03/2026|12:00"
    english = render_one(tmp_path / "en", "{{ data.at | localtime }}", "en-US", "America/New_York",
                         at="2026-03-02T13:05:00+00:00")  # fmt: skip
    assert english == f"8:05{NNBSP}AM"


def test_numbers_currencies_and_percentages(tmp_path: Path) -> None:
    body = "{{ data.n | number }}|{{ data.price | currency('EUR') }}|{{ data.share | percent }}"
    assert render_one(tmp_path / "fr", body, "fr", n=1234567.891, price="1234.5", share=0.25) == (
        f"1{NNBSP}234{NNBSP}567,891|1{NNBSP}234,50{NBSP}€|25{NBSP}%"
    )
    assert render_one(tmp_path / "de", body, "de", n=1234567.891, price=1234.5, share=0.25) == (
        f"1.234.567,891|1.234,50{NBSP}€|25{NBSP}%"
    )
    assert render_one(tmp_path / "en", body, "en", n=1234567.891, price=1234.5, share=0.25) == (
        "1,234,567.891|€1,234.50|25%"
    )


@pytest.mark.parametrize(
    ("count", "expected"),
    [(1, "1 день"), (3, "3 дня"), (5, "5 дней"), (21, "21 день"), (1234, f"1{NBSP}234 дня")],
)
def test_plural_forms_follow_the_languages_rules(tmp_path: Path, count: int, expected: str) -> None:
    body = "{{ data.n | plural(one='# день', few='# дня', many='# дней', other='# дня') }}"
    assert render_one(tmp_path, body, "ru", n=count) == expected


def test_formats_follow_the_recipients_own_tag_within_the_templates_language(templates: Path) -> None:
    folder(templates, "pt", {"sms.txt": "{{ data.n | number }}"})
    folder(templates, "", {"sms.txt": "{{ data.n | number }}"})
    renderer = Renderer(templates)
    # pt-BR gets the pt templates with Brazilian numbers; ja gets the English default, English numbers.
    assert renderer.render(KIND, "sms", {"data": {"n": 1234.5}}, locale="pt-BR").text == "1.234,5"
    assert renderer.render(KIND, "sms", {"data": {"n": 1234.5}}, locale="ja").text == "1,234.5"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            "{{ data.v | localdate }}",
            "localdate: 'soon' is not a date YYYY-MM-DD or an instant with an offset",
        ),
        ("{{ data.naive | localdatetime }}", "localdatetime: datetime.datetime(2026, 3, 2, 13, 0) is not"),
        ("{{ data.v | number }}", "number: 'soon' is not a number"),
        ("{{ 3 | currency('EURO') }}", "currency: 'EURO' is not an ISO 4217 currency code"),
        (
            "{{ 2 | plural(one='# day') }}",
            "plural: ['one'] is not forms among zero, one, two, few, many, other",
        ),
        ("{{ 2 | plural(one='x', other='y', several='z') }}", "plural: ['one', 'other', 'several'] is not"),
    ],
)
def test_a_value_a_filter_cannot_read_fails_the_rendering_in_one_line(
    tmp_path: Path, body: str, problem: str
) -> None:
    folder(tmp_path, "", {"sms.txt": body})
    data = {"v": "soon", "naive": "2026-03-02T13:00:00"}
    with pytest.raises(TemplateFailure) as failed:
        Renderer(tmp_path).render(KIND, "sms", {"data": data}, locale="fr")
    assert problem in str(failed.value) and "\n" not in str(failed.value)


def test_the_filters_count_against_the_sandboxs_steps(tmp_path: Path) -> None:
    folder(
        tmp_path, "", {"sms.txt": "{% for i in range(99999) %}{{ i | number }}{{ i | number }}{% endfor %}"}
    )
    with pytest.raises(TemplateFailure, match=f"more than {MAX_STEPS:,} steps"):
        Renderer(tmp_path).render(KIND, "sms", {}, locale="fr")


def test_a_template_rendered_without_a_recipient_formats_in_english_utc(tmp_path: Path) -> None:
    folder(tmp_path, "", {"sms.txt": "{{ '2026-03-02T13:05:00Z' | localtime('HH:mm') }}"})
    renderer = Renderer(tmp_path)
    template = renderer.env.get_template(f"{KIND}/sms.txt")
    assert template.render() == "13:05"
    assert template.render({FORMATTING_KEY: formatting("fr", "Asia/Tokyo", "en")}) == "22:05"


def test_the_check_renders_every_locale_and_lists_one_missing_a_channel(templates: Path) -> None:
    subject = "{{ data.total | currency('EUR') }}"
    text = "{{ data.n | plural(one='# jour', other='# jours') }} {{ oops }}"
    folder(templates, "fr", {"email_subject.txt": subject, "email.txt": text})
    checks = {(c.kind, c.channel, c.locale): c for c in check_templates(Renderer(templates), [KIND])}
    assert set(checks) == {
        (KIND, channel, locale)
        for channel in ("email", "sms")
        for locale in (None, "de-CH", "fr", "pt", "pt-BR")
    }
    missing = checks[(KIND, "sms", "pt-BR")]
    assert (missing.status, missing.fatal) == ("missing", False)
    assert missing.problems == [f"no {KIND}/pt-BR/sms.txt: recipients in pt-BR get the default sms templates"]
    # Sample data passes through the filters (no false alarm); an undefined name is an error.
    broken = checks[(KIND, "email", "fr")]
    assert (broken.status, broken.fatal) == ("error", True)
    assert broken.problems == [f"{KIND}/fr/email.txt: undefined variable: 'oops' is undefined"]
    assert sorted(broken.data_keys) == ["n", "total"]
    assert all(c.status == "ok" for key, c in checks.items() if key[2] in (None, "pt", "de-CH"))


PAGE = Path(__file__).parents[2] / "docs" / "how-to" / "templates.md"


def test_the_docs_localized_template_renders_as_the_page_says(tmp_path: Path) -> None:
    text = PAGE.read_text(encoding="utf-8")
    template = text.split("```jinja\n", 1)[1].split("```", 1)[0]
    said = text.split("gives `", 1)[1].split("` for a recipient", 1)[0]
    folder(tmp_path, "fr", {"email_subject.txt": "Votre point", "email.txt": template})
    context = {
        "recipient": {"attributes": {"first_name": "Ann"}},
        "scheduled_at": "2026-03-02T07:00:00+00:00",
        "data": {"unread": 1234, "balance": 1234.5, "open_rate": 0.25},
    }
    rendered = Renderer(tmp_path).render(KIND, "email", context, locale="fr", zone="Europe/Paris").text
    assert rendered.startswith("Bonjour Ann,")
    # The page wraps the line and writes CLDR's no-break spaces as spaces.
    body = " ".join(rendered.replace(NNBSP, " ").replace(NBSP, " ").split("\n\n", 1)[1].split())
    assert body == " ".join(said.split())
