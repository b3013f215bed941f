"""Operator templates in the bounded sandbox: what a template may not do fails that rendering with a
template error, quickly (in steps and characters, not time); ordinary templates render as before;
and on both databases a template that fails in any way is a dead delivery with its error recorded,
never one left ``sending``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from adapters.capture import CaptureAdapter
from planner.app import App, build_deliverer
from planner.commands.notify import notify
from planner.delivery.sandbox import MAX_CHARS, MAX_STEPS
from planner.delivery.templating import Renderer, TemplateFailure
from planner.store.models import Delivery
from tests.commands.test_ops import add_recipient

#: Each a template that plain Jinja renders (some slowly, some into huge text, some unsafely).
REFUSED = {
    "loops": ("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}", "steps"),
    "macro": (
        "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(20) }}",
        "steps",
    ),
    "output": ("{% for i in range(20000) %}{{ 'x' * 100 }}{% endfor %}", "characters of text"),
    "repeat": ("{{ 'x' * 10**7 }}", "a width of 10,000,000"),
    "doubling": (
        "{% set ns = namespace(s='x') %}{% for i in range(30) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "a value of 1,048,576 items",
    ),
    "padding": ("{{ 'x'.center(10**8) }}{{ 'x'|indent(10**8) }}", "a width of 100,000,000"),
    "format": ("{{ '%100000000d' % 1 }}", "a format asking for a width"),
    "power": ("{{ 7 ** 100000 }}", "bits"),
    "private": ("{{ ''.__class__.__mro__ }}", "unsafe"),
    "mutation": ("{% set seen = [] %}{{ seen.append(1) }}", "unsafe"),
    "typeerror": ("{{ data.amount + 1 }}", "TypeError: can only concatenate str"),
    "bigrange": ("{% for i in range(10**6) %}{% endfor %}", "OverflowError: Range too big"),
}


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    """A templates folder with one kind per refused template (its email text) and one that is fine."""
    for kind, (body, _) in {
        **REFUSED,
        "fine": ("Hi {{ recipient.external_id }}: {{ data.n + 1 }}", ""),
    }.items():
        folder = tmp_path / "templates" / kind
        folder.mkdir(parents=True)
        (folder / "email_subject.txt").write_text(f"{kind}\n")
        (folder / "email.txt").write_text(body)
    return tmp_path / "templates"


CONTEXT = {"recipient": {"external_id": "u-1"}, "data": {"amount": "abc", "n": 1}}


@pytest.mark.parametrize("kind", sorted(REFUSED))
def test_what_a_template_may_not_do_is_a_template_failure_naming_it(templates: Path, kind: str) -> None:
    with pytest.raises(TemplateFailure) as failed:
        Renderer(templates).render(kind, "email", CONTEXT)
    message = str(failed.value)
    assert message.startswith(f"template_error: {kind}/email.txt: "), message
    assert REFUSED[kind][1] in message, message


def test_ordinary_templates_render_as_before(templates: Path) -> None:
    rendered = Renderer(templates).render("fine", "email", CONTEXT)
    assert (rendered.subject, rendered.text) == ("fine", "Hi u-1: 2")
    built_in = Renderer().render(
        "comments_digest",
        "email",
        {
            "recipient": {"external_id": "u-1"},
            "events": [{"occurred_local": "2026-03-01 09:00", "data": {"author": "Bo", "text": "hi"}}] * 3,
            "events_total": 3,
            "events_more": 0,
        },
    )
    assert built_in.text.count("- 2026-03-01 09:00 Bo: hi") == 3


def test_the_bounds_are_generous_for_real_messages() -> None:
    assert MAX_STEPS >= 100_000 and MAX_CHARS >= 1_000_000


@pytest.fixture
def templated_app(app: App, templates: Path) -> Iterator[App]:
    app.settings.templates_dir = templates
    fresh = App(app.settings)
    yield fresh
    fresh.close()


@pytest.mark.parametrize("kind", ["typeerror", "loops", "private"])
def test_a_failing_template_is_a_dead_delivery_with_its_error_never_left_sending(
    templated_app: App, kind: str
) -> None:
    add_recipient(templated_app)
    result = notify(templated_app, "u-1", kind, "email", now=templated_app.clock(), data={"amount": "abc"})
    capture = CaptureAdapter()
    deliverer = build_deliverer(templated_app, adapters={"email": capture, "sms": capture})
    report = deliverer.deliver_batch([int(result.delivery["id"])])
    assert (report.dead, report.sent) == (1, 0)
    with templated_app.sessions() as session:
        delivery = session.scalars(select(Delivery)).one()
    assert delivery.status == "dead"
    assert delivery.last_error is not None and delivery.last_error.startswith(f"template_error: {kind}/")
    assert not capture.sent
