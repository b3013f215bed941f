"""Message rendering from Jinja2 templates, one folder per kind.

Layout: ``<kind>/email_subject.txt``, ``<kind>/email.txt``, optional ``<kind>/email.html`` and
``<kind>/sms.txt``. A user folder (``PLANNER_TEMPLATES_DIR``) is searched before the built-in
templates. A missing template or a render error is a :class:`TemplateFailure`: a permanent failure,
since sending again will not make the template appear.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from planner.errors import PlannerError

BUILTIN = Path(__file__).resolve().parent.parent / "templates"


class TemplateFailure(PlannerError):
    pass


@dataclass(frozen=True)
class Rendered:
    subject: str | None
    text: str
    html: str | None


class Renderer:
    def __init__(self, extra_dir: Path | None = None, *, generic_fallback: bool = False) -> None:
        loaders: list[jinja2.BaseLoader] = []
        if extra_dir is not None:
            loaders.append(jinja2.FileSystemLoader(str(extra_dir)))
        loaders.append(jinja2.FileSystemLoader(str(BUILTIN)))
        if generic_fallback:
            # For test kits: any kind renders, so a team can test schedules before writing copy.
            loaders.append(jinja2.FunctionLoader(_generic))
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            undefined=jinja2.StrictUndefined,
            autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
            keep_trailing_newline=False,
        )
        self._templates: dict[str, jinja2.Template | None] = {}

    def _template(self, name: str) -> jinja2.Template | None:
        # Jinja caches compiled templates but searches every loader again for a missing one, and
        # an optional HTML part is missing for most kinds: remember both answers.
        if name not in self._templates:
            try:
                self._templates[name] = self.env.get_template(name)
            except jinja2.TemplateNotFound:
                self._templates[name] = None
        return self._templates[name]

    def _render(self, name: str, context: dict[str, Any], *, optional: bool = False) -> str | None:
        template = self._template(name)
        if template is None:
            if optional:
                return None
            raise TemplateFailure(f"template_missing: no template {name!r}")
        try:
            return template.render(context).strip()
        except jinja2.TemplateError as exc:
            raise TemplateFailure(f"template_error: {name}: {exc}") from exc

    def render(self, kind: str, channel: str, context: dict[str, Any]) -> Rendered:
        if channel == "email":
            subject = self._render(f"{kind}/email_subject.txt", context)
            text = self._render(f"{kind}/email.txt", context)
            html = self._render(f"{kind}/email.html", context, optional=True)
            assert text is not None
            return Rendered(subject=subject, text=text, html=html)
        body = self._render(f"{kind}/sms.txt", context)
        assert body is not None
        return Rendered(subject=None, text=body, html=None)


def _generic(name: str) -> str | None:
    kind, _, leaf = name.partition("/")
    return {
        "email_subject.txt": f"{kind} for {{{{ local_date }}}}",
        "email.txt": f"{kind} for {{{{ recipient.external_id }}}} on {{{{ local_date }}}}",
        "sms.txt": f"{kind} for {{{{ local_date }}}}",
    }.get(leaf)
