"""The templates the subscriptions need: which kinds render on which channel, which lack their files.

:func:`subscriptions_without_template_files` is answered from the file system, not by the renderer,
so ``planner run`` does not import Jinja to warn before those sends fail (see
``planner.delivery.template_files``); ``planner templates check`` renders them for real
(:func:`template_checks`).
"""

from __future__ import annotations

from planner.app import App
from planner.delivery.template_files import has_template_files, template_folders
from planner.delivery.templating import TemplateCheck, check_templates
from planner.store.queries import subscribed_kinds


def subscriptions_without_template_files(app: App) -> dict[tuple[str, str], int]:
    """Active subscriptions per (kind, channel) whose kind has no template files for the channel."""
    folders = template_folders(app.settings.templates_dir)
    with app.sessions() as session:
        subscribed = subscribed_kinds(session)
    return {key: n for key, n in subscribed.items() if not has_template_files(folders, *key)}


def template_checks(app: App) -> tuple[list[TemplateCheck], dict[tuple[str, str], int]]:
    """Every kind with a template folder or an active subscription, rendered on both channels,
    and the active subscriptions per (kind, channel) (a missing template matters only there)."""
    with app.sessions() as session:
        subscribed = subscribed_kinds(session)
    kinds = app.templates.kinds() | {kind for kind, _ in subscribed}
    return check_templates(app.templates, kinds), subscribed


def subscriptions_without_templates(app: App) -> dict[tuple[str, str], int]:
    """Active subscriptions whose kind cannot be rendered on their channel: they will fail."""
    with app.sessions() as session:
        subscribed = subscribed_kinds(session)
    return {key: n for key, n in subscribed.items() if not app.templates.has_template(*key)}
