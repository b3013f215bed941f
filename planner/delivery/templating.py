"""Message rendering from Jinja2 templates, one folder per kind, and in it one folder per language.

Layout: ``<kind>/email_subject.txt``, ``<kind>/email.txt``, optional ``<kind>/email.html`` and
``<kind>/sms.txt``: the default templates, in the language ``PLANNER_DEFAULT_LOCALE`` names. A
folder named by a BCP 47 tag holds the same files in that language: ``<kind>/fr/email.txt``,
``<kind>/pt-BR/sms.txt``. A recipient's locale picks the templates along its lookup chain
(``pt-BR`` -> ``pt`` -> the default; :func:`planner.core.locales.lookup_chain`), per channel: a
locale folder serves a channel only with every file the channel needs (an email's subject and text;
its HTML only from the same folder, never another language's), else the chain goes on. The tag of
the templates used is :attr:`Rendered.locale`, recorded on the delivery.

A user folder (``PLANNER_TEMPLATES_DIR``) is searched before the built-in templates. Templates run
in a bounded sandbox (:mod:`planner.delivery.sandbox`) with the formatting filters of
:mod:`planner.delivery.formatting` (dates, times, numbers, plurals in the recipient's language and
zone). A missing template, or a rendering that fails in any way (a template error, a bound, a
``TypeError`` on the data), is a :class:`TemplateFailure`: a permanent failure, since sending
again will not make it render.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from planner.core.locales import canonical, is_well_formed, lookup_chain
from planner.delivery import sandbox
from planner.delivery.formatting import FILTERS, FORMATTING_KEY, SampleValue, formatting
from planner.delivery.template_files import BUILTIN, REQUIRED, template_folders
from planner.errors import InvalidInput, PlannerError


class TemplateFailure(PlannerError):
    pass


@dataclass(frozen=True)
class Rendered:
    subject: str | None
    text: str
    html: str | None
    #: The language of the templates used (a BCP 47 tag; the default templates' is the default locale).
    locale: str | None = None


CHANNELS = ("email", "sms")


class Renderer:
    def __init__(self, extra_dir: Path | None = None, default_locale: str = "en") -> None:
        self.extra_dir = extra_dir
        self.default_locale = default_locale
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
        self.env.add_filters(FILTERS)
        self._templates: dict[str, jinja2.Template | None] = {}
        #: Per kind, its locale folders: the tag in lower case -> the folder's name.
        self._locales: dict[str, dict[str, str]] = {}
        #: Per (kind, channel, recipient locale): the locale folder chosen (None: the default).
        self._chosen: dict[tuple[str, str, str | None], str | None] = {}
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

    def locales(self, kind: str) -> dict[str, str]:
        """The kind's locale folders (the user's first): each tag in lower case -> the folder's name."""
        found = self._locales.get(kind)
        if found is None:
            found = {}
            for folder in self.folders:
                base = folder / kind
                children = sorted(base.iterdir()) if base.is_dir() else []
                for child in children:
                    if child.is_dir() and is_well_formed(child.name):
                        found.setdefault(child.name.lower(), child.name)
            self._locales[kind] = found
        return found

    def choose(self, kind: str, channel: str, locale: str | None) -> str | None:
        """The locale folder whose templates ``locale`` gets on ``channel`` (None: the default ones):
        the first along its lookup chain holding every file the channel needs."""
        key = (kind, channel, locale)
        if key not in self._chosen:
            chosen = None
            folders = self.locales(kind)
            for tag in lookup_chain(locale) if locale and folders else ():
                folder = folders.get(tag.lower())
                leaves = REQUIRED.get(channel, ("?",))
                if folder and all(self._template(f"{kind}/{folder}/{leaf}") for leaf in leaves):
                    chosen = folder
                    break
            self._chosen[key] = chosen
        return self._chosen[key]

    def render(
        self,
        kind: str,
        channel: str,
        context: dict[str, Any],
        *,
        locale: str | None = None,
        zone: str | None = None,
    ) -> Rendered:
        """The message for a recipient whose language is ``locale`` (a BCP 47 tag) in ``zone``:
        from the templates :meth:`choose` picks, its dates and numbers formatted accordingly."""
        folder = self.choose(kind, channel, locale)
        used = canonical(folder) if folder else self.default_locale
        # Formats follow the recipient's own tag within the templates' language (pt-BR for pt),
        # the templates' language otherwise: no French numbers in an English message.
        within = locale is not None and used.lower() in (t.lower() for t in lookup_chain(locale))
        tag = locale if within and locale else used
        context = {**context, FORMATTING_KEY: formatting(tag, zone or "UTC", self.default_locale)}
        prefix = f"{kind}/{folder}" if folder else kind
        if channel == "email":
            subject = self._render(f"{prefix}/email_subject.txt", context)
            text = self._render(f"{prefix}/email.txt", context)
            html = self._render(f"{prefix}/email.html", context, optional=True)
            assert text is not None
            return Rendered(subject=subject, text=text, html=html, locale=used)
        body = self._render(f"{prefix}/sms.txt", context)
        assert body is not None
        return Rendered(subject=None, text=body, html=None, locale=used)


class _SampleData(dict[str, Any]):
    """Template ``data`` for a check: any key renders as ``<key>`` and is noted as used."""

    def __init__(self) -> None:
        super().__init__()
        self.used: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.used.add(str(key))
        return SampleValue(f"<{key}>")

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
    "scheduled_at": "2026-03-02T13:00:00+00:00",
    "scheduled_local": "2026-03-02 08:00 EST",
}


@dataclass
class TemplateCheck:
    """One kind on one channel in one language (``locale``; None: the default templates): ``ok``,
    ``missing`` or ``error``, with what was found."""

    kind: str
    channel: str
    status: str
    problems: list[str] = field(default_factory=list)
    data_keys: list[str] = field(default_factory=list)
    locale: str | None = None

    @property
    def fatal(self) -> bool:
        """Whether the kind's deliveries on the channel would fail: an error in any language, or no
        default template (a locale folder missing the channel only sends its recipients the default)."""
        return self.status == "error" or (self.status == "missing" and self.locale is None)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def check_templates(renderer: Renderer, kinds: Iterable[str]) -> list[TemplateCheck]:
    """Render every (kind, channel), in the default templates and in each locale folder of the kind,
    with sample data: missing files, syntax errors, undefined names, bad filter arguments.

    ``data`` accepts any key (it comes from the caller of ``/notify``); the keys a template uses
    are listed so the caller knows what to send.
    """
    checks = []
    for kind in sorted(set(kinds)):
        for folder in [None, *sorted(renderer.locales(kind).values(), key=str.lower)]:
            for channel in CHANNELS:
                checks.append(_check_one(renderer, kind, channel, folder))
    return checks


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:300]


def _check_one(renderer: Renderer, kind: str, channel: str, folder: str | None) -> TemplateCheck:
    tag = canonical(folder) if folder else None
    check = TemplateCheck(kind, channel, "ok", locale=tag)
    leaves = (*REQUIRED[channel], "email.html") if channel == "email" else REQUIRED[channel]
    prefix = f"{kind}/{folder}" if folder else kind
    for leaf in leaves:
        name = f"{prefix}/{leaf}"
        try:
            template = renderer.env.get_template(name)
        except jinja2.TemplateNotFound:
            if leaf in REQUIRED[channel]:
                check.status = "missing" if check.status == "ok" else check.status
                fallback = f": recipients in {tag} get the default {channel} templates" if tag else ""
                check.problems.append(f"no {name}{fallback}")
            continue
        except jinja2.TemplateSyntaxError as exc:
            check.status = "error"
            check.problems.append(f"{name}:{exc.lineno}: syntax error: {exc.message}")
            continue
        data = _SampleData()
        language = tag or renderer.default_locale
        context = {
            **SAMPLE_CONTEXT,
            "recipient": {**SAMPLE_CONTEXT["recipient"], "locale": language, "attributes": data},
            FORMATTING_KEY: formatting(language, "America/New_York", renderer.default_locale),
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
