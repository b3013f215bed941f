"""Pages for the people the messages go to, not for operators: the unsubscribe link's page.

Plain words, no jargon, no kind ids: the kind is named as the team names it
(``PLANNER_KIND_NAMES``). The page needs no sign-in (the signed link is the authentication) and no
script; its one stylesheet is served from this site.
"""

from __future__ import annotations

import functools

from fastapi.responses import HTMLResponse
from jinja2 import Environment

from planner.readmodels.recipients import LinkState
from planner.ui.web import make_templates

#: A channel as a person calls it.
CHANNEL_WORDS = {"email": "email", "sms": "text message"}


@functools.cache
def _templates() -> Environment:
    return make_templates()


def unsubscribe_page(token: str, state: LinkState | None) -> HTMLResponse:
    """The link's page: unsubscribe, or (once unsubscribed) subscribe again; a 404 page for a link
    that does not verify or whose recipient is gone."""
    html = _templates().get_template("unsubscribe.html").render(
        token=token, state=state, channel=CHANNEL_WORDS.get(state.channel, state.channel) if state else ""
    )
    return HTMLResponse(html, status_code=200 if state is not None else 404)
