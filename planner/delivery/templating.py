"""Message rendering from Jinja2 templates, one folder per kind.

Layout: ``<kind>/email_subject.txt``, ``<kind>/email.txt``, optional ``<kind>/email.html`` and
``<kind>/sms.txt``. A user folder (``PLANNER_TEMPLATES_DIR``) is searched before the built-in
templates. Templates run in a bounded sandbox (:mod:`planner.delivery.sandbox`). A missing template,
or a rendering that fails in any way (a template error, a bound, a ``TypeError`` on the data), is a
:class:`TemplateFailure`: a permanent failure, since sending again will not make it render.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from planner.delivery import sandbox
from planner.delivery.template_files import BUILTIN, REQUIRED, template_folders
from planner.errors import InvalidInput, PlannerError


class TemplateFailure(PlannerError):
    pass


@dataclass(frozen=True)
class Rendered:
    subject: str | None
    text: str
    html: str | None


CHANNELS = ("email", "sms")


class Renderer:
    def __init__(self, extra_dir: Path | None = None) -> None:
        self.extra_dir = extra_dir
        self.folders = template_folders(extra_dir)
        loaders: list[jinja2.BaseLoader] = []
        if extra_dir is not None:
            loaders.append(jinja2.FileSystemLoader(str(extra_dir)))
        loaders.append(jinja2.FileSystemLoader(str(BUILTIN)))
        self.env = sandbox.BoundedSandbox(
            loader=jinja2.ChoiceLoader(loaders),
            undefined=jinja2.StrictUndefined,
            autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
            keep_trailing_newline=False,
        )
        self._templates: dict[str, jinja2.Template | None] = {}
        #: Each template's globals as one plain dict (Jinja keeps them in a ChainMap it flattens on
        #: every render); nothing changes the environment's globals once templates are loaded.
        self._globals: dict[str, dict[str, Any]] = {}

    def _template(self, name: str) -> jinja2.Template | None:
        # Jinja caches compiled templates but searches every loader again for a missing one, and
        # an optional HTML part is missing for most kinds: remember both answers.
        if name not in self._templates:
            try:
                template = self._templates[name] = self.env.get_template(name)
                self._globals[name] = dict(template.globals)
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
            return sandbox.render(template, context, self._globals[name]).strip()
        except jinja2.TemplateError as exc:
            raise TemplateFailure(f"template_error: {name}: {exc}") from exc
        except Exception as exc:  # the data did not fit the template: `{{ data.amount + 1 }}` on "abc"
            raise TemplateFailure(f"template_error: {name}: {type(exc).__name__}: {exc}") from exc

    def has_template(self, kind: str, channel: str) -> bool:
        """Whether ``kind`` can be rendered for ``channel`` (checked at import, notify and run)."""
        return all(self._template(f"{kind}/{leaf}") is not None for leaf in REQUIRED.get(channel, ("?",)))

    def kinds(self) -> set[str]:
        """The kinds that have a template folder."""
        return {d.name for folder in self.folders if folder.is_dir() for d in folder.iterdir() if d.is_dir()}

    def require(self, kind: str, channel: str | None = None, field: str = "kind") -> None:
        """The one rule of every door that takes a kind to send (a notification, a subscription, a
        digest event; the API, the CLI, imports and the testing kit): the kind has templates, for
        ``channel`` when given. :class:`InvalidInput` lists the kinds that have them and says where
        they come from."""
        found = self.has_template(kind, channel) if channel is not None else kind in self.kinds()
        if found:
            return
        usable = sorted(k for k in self.kinds() if channel is None or self.has_template(k, channel))
        where = f"PLANNER_TEMPLATES_DIR ({self.extra_dir or 'unset'})"
        raise InvalidInput(
            field,
            kind,
            f"a kind with {f'{channel} ' if channel else ''}templates: {', '.join(usable) or 'none'} "
            f"(the built-in ones, and a folder per kind in {where}; `planner templates check` lists them)",
        )

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


class _SampleData(dict[str, Any]):
    """Template ``data`` for a check: any key renders as ``<key>`` and is noted as used."""

    def __init__(self) -> None:
        super().__init__()
        self.used: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.used.add(str(key))
        return f"<{key}>"

    def __getattr__(self, key: str) -> str:
        if key.startswith("__"):
            raise AttributeError(key)
        return self[key]

    def __contains__(self, key: object) -> bool:
        return True


SAMPLE_CONTEXT: dict[str, Any] = {
    "recipient": {
        "external_id": "sample-1",
        "timezone": "America/New_York",
        "email": "sample@example.com",
        "phone": "+12125550100",
    },
    "local_date": "2026-03-02",
    "scheduled_local": "2026-03-02 08:00 EST",
}


@dataclass
class TemplateCheck:
    """One kind on one channel: ``ok``, ``missing`` or ``error``, with what was found."""

    kind: str
    channel: str
    status: str
    problems: list[str] = field(default_factory=list)
    data_keys: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def check_templates(renderer: Renderer, kinds: Iterable[str]) -> list[TemplateCheck]:
    """Render every (kind, channel) with sample data: missing files, syntax errors, undefined names.

    ``data`` accepts any key (it comes from the caller of ``/notify``); the keys a template uses
    are listed so the caller knows what to send.
    """
    checks = []
    for kind in sorted(set(kinds)):
        for channel in CHANNELS:
            checks.append(_check_one(renderer, kind, channel))
    return checks


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:300]


def _check_one(renderer: Renderer, kind: str, channel: str) -> TemplateCheck:
    check = TemplateCheck(kind, channel, "ok")
    leaves = (*REQUIRED[channel], "email.html") if channel == "email" else REQUIRED[channel]
    for leaf in leaves:
        name = f"{kind}/{leaf}"
        try:
            template = renderer.env.get_template(name)
        except jinja2.TemplateNotFound:
            if leaf in REQUIRED[channel]:
                check.status = "missing" if check.status == "ok" else check.status
                check.problems.append(f"no {name}")
            continue
        except jinja2.TemplateSyntaxError as exc:
            check.status = "error"
            check.problems.append(f"{name}:{exc.lineno}: syntax error: {exc.message}")
            continue
        data = _SampleData()
        context = {
            **SAMPLE_CONTEXT,
            "delivery": {"id": 1, "kind": kind, "channel": channel, "dedup_key": "sample"},
            "data": data,
            # A digest's events (planner.delivery.deliverer): their data accepts any key, too.
            "events": [
                {
                    "id": 1,
                    "occurred_at": "2026-03-01T14:00:00+00:00",
                    "occurred_local": "2026-03-01 09:00",
                    "data": data,
                }
            ],
            "events_more": 0,
            "events_total": 1,
        }
        try:
            sandbox.render(template, context)
        except jinja2.UndefinedError as exc:
            check.status = "error"
            check.problems.append(f"{name}: undefined variable: {exc.message}")
        except Exception as exc:  # a template error, a bound, or the sample data not fitting
            check.status = "error"
            check.problems.append(f"{name}: {type(exc).__name__}: {_one_line(exc)}")
        check.data_keys = sorted(set(check.data_keys) | data.used)
    return check
