"""MkDocs hooks: the generated parts of the reference, built from the code at every build.

* ``<!-- generated: settings -->`` becomes the table of ``planner.settings.Settings`` (the rows
  ``planner --help`` lists, from :func:`planner.cli.help_text.reference_rows`);
* ``<!-- generated: adapter-options -->`` becomes the options of the bundled adapters;
* ``<!-- generated: dst-cases -->`` and ``<!-- generated: dst-rule-cases -->`` become the tables of
  the named DST cases the test suite pins down (``fixtures/dst_cases.json``,
  ``fixtures/dst_rule_cases.json``);
* ``<!-- generated: python-api PACKAGE -->`` becomes one mkdocstrings entry per name of the package's
  ``__all__``, so the Python API reference lists exactly the public names;
* ``reference/openapi.json`` is the HTTP API's OpenAPI document, from ``planner.api.app.create_api``.
"""

from __future__ import annotations

import json
import re
from importlib import import_module
from datetime import datetime
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

OPENAPI_PATH = "reference/openapi.json"
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def settings_table() -> str:
    from planner.cli.help_text import reference_rows

    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, default, description in reference_rows():
        lines.append(f"| `PLANNER_{name.upper()}` | `{_cell(default)}` | {_cell(description)} |")
    return "\n".join(lines)


def adapter_options_table() -> str:
    from adapters import setting_name
    from planner.cli.help_text import reference_adapters

    lines = ["| adapter | channels | variables |", "| --- | --- | --- |"]
    for value, (channels, options) in reference_adapters().items():
        module, _, attribute = value.partition(":")
        name = getattr(import_module(module), attribute).name
        shown = ", ".join(f"`{setting_name(name, option)}`" for option in options) or "none"
        lines.append(f"| `{name}` | {channels} | {shown} |")
    return "\n".join(lines)


def openapi_document() -> str:
    """The OpenAPI document of the API, built without a database, Redis or network."""
    from planner.api.app import create_api
    from planner.app import App
    from planner.settings import Settings

    settings = Settings(database_url="sqlite:///:memory:", redis_url=None)
    return json.dumps(create_api(App(settings)).openapi(), indent=2, sort_keys=False)


def _sent_at(local: str | None, utc: str | None) -> str:
    """'03:30 -04:00 (07:30Z)', with the UTC date when it differs from the local one."""
    if local is None or utc is None:
        return "nothing: the date does not exist"
    at, instant = datetime.fromisoformat(local), datetime.fromisoformat(utc)
    offset = at.strftime("%z")
    shown = f"{at:%H:%M} {offset[:3]}:{offset[3:]} ({instant:%H:%M}Z"
    if instant.date() != at.date():
        shown += f" on {instant.date()}"
    return shown + ")"


def dst_cases_table() -> str:
    cases = json.loads((FIXTURES / "dst_cases.json").read_text(encoding="utf-8"))
    lines = ["| zone | local date and wall time | sent at | rule | why |", "| --- | --- | --- | --- | --- |"]
    for c in cases:
        sent = _sent_at(c.get("expected_local"), c.get("expected_utc"))
        lines.append(
            f"| {c['zone']} | {c['date']} {c['time']} | {sent} | {c.get('adjustment') or 'none'} | {_cell(c['why'])} |"
        )
    return "\n".join(lines)


def dst_rule_cases_table() -> str:
    cases = json.loads((FIXTURES / "dst_rule_cases.json").read_text(encoding="utf-8"))
    lines = ["| rule | zone | at | occurrences (from the date shown) | why |", "| --- | --- | --- | --- | --- |"]
    for c in cases:
        found = ", ".join(f"{o['local_date']} {_sent_at(o['local'], o['utc'])}" for o in c["expected"])
        lines.append(
            f"| `{c['rrule']}` | {c['zone']} | {c['at']} | from {c['from']}: {found} | {_cell(c['why'])} |"
        )
    return "\n".join(lines)


def python_api(package: str) -> str:
    """A ``::: package.name`` entry for each public name, in ``__all__``'s order."""
    names = import_module(package).__all__
    return "\n\n".join(f"::: {package}.{name}" for name in names)


GENERATED = {
    "<!-- generated: settings -->": settings_table,
    "<!-- generated: adapter-options -->": adapter_options_table,
    "<!-- generated: dst-cases -->": dst_cases_table,
    "<!-- generated: dst-rule-cases -->": dst_rule_cases_table,
}


def on_files(files: Files, config: Any) -> Files:
    files.append(File.generated(config, OPENAPI_PATH, content=openapi_document()))
    return files


PYTHON_API = re.compile(r"<!-- generated: python-api ([a-z_.]+) -->")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    for marker, build in GENERATED.items():
        if marker in markdown:
            markdown = markdown.replace(marker, build())
    return PYTHON_API.sub(lambda match: python_api(match.group(1)), markdown)
