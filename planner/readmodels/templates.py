"""Which subscribed kinds lack their template files: ``planner run`` warns before those sends fail.

Answered from the file system, not by the renderer, so a run does not import Jinja (see
``planner.delivery.template_files``); ``planner templates check`` renders them for real.
"""

from __future__ import annotations

from planner.app import App
from planner.delivery.template_files import has_template_files, template_folders
from planner.store.queries import subscribed_kinds


def subscriptions_without_template_files(app: App) -> dict[tuple[str, str], int]:
    """Active subscriptions per (kind, channel) whose kind has no template files for the channel."""
    folders = template_folders(app.settings.templates_dir)
    with app.sessions() as session:
        subscribed = subscribed_kinds(session)
    return {key: n for key, n in subscribed.items() if not has_template_files(folders, *key)}
