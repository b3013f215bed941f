"""``planner templates check`` renders every kind in every locale folder, as a person runs it (a real
process), on SQLite and PostgreSQL: a locale missing a channel's template is listed and does not
fail the check (its recipients get the default templates); an error in a subscribed kind's locale
template does."""

from __future__ import annotations

import json
from pathlib import Path

from planner.app import App
from planner.settings import Settings
from tests.cli.test_templates_check import check
from tests.commands.test_ops import add_recipient


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_every_locale_is_rendered_and_one_missing_a_channel_is_listed(
    settings: Settings, app: App, tmp_path: Path
) -> None:
    templates = tmp_path / "templates"
    for leaf, text in {"email_subject.txt": "Invoice", "email.txt": "{{ data.total | currency('EUR') }}",
                       "sms.txt": "Invoice {{ data.total | number }}"}.items():  # fmt: skip
        write(templates, f"invoice/{leaf}", text)
    write(templates, "invoice/pt-BR/email_subject.txt", "Fatura")
    write(templates, "invoice/pt-BR/email.txt", "{{ data.count | plural(one='# item', other='# itens') }}")
    app.settings.templates_dir = templates
    add_recipient(app, subscriptions=[{"kind": "invoice", "channel": "sms", "at": "09:00"}])

    done = check(settings, templates)
    assert done.returncode == 0, done.stderr
    rows = {(r["kind"], r["channel"], r["locale"]): r for r in json.loads(done.stdout)["templates"]}
    assert {key for key in rows if key[0] == "invoice"} == {
        ("invoice", channel, locale) for channel in ("email", "sms") for locale in (None, "pt-BR")
    }
    missing = rows[("invoice", "sms", "pt-BR")]
    assert (missing["status"], missing["subscriptions"]) == ("missing", 1)
    assert missing["problems"] == [
        "no invoice/pt-BR/sms.txt: recipients in pt-BR get the default sms templates"
    ]
    assert rows[("invoice", "email", "pt-BR")]["status"] == "ok"
    assert rows[("invoice", "email", "pt-BR")]["data_keys"] == ["count"]

    write(templates, "invoice/fr/sms.txt", "{{ data.total | plural(one='# facture') }}")
    failed = check(settings, templates)
    assert failed.returncode == 1
    assert failed.stderr.strip() == "error: 1 template problem(s): invoice/sms (fr)"
    [problem] = next(
        r for r in json.loads(failed.stdout)["templates"] if r["locale"] == "fr" and r["channel"] == "sms"
    )["problems"]
    assert problem.startswith("invoice/fr/sms.txt: ValueError: plural: ['one'] is not forms among")
