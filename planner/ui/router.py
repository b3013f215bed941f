"""The dashboard at ``/ui`` as one router: sign-in, pages and actions, bound to one :class:`Ui`."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from planner.app import App
from planner.ui import actions, monitor, pages, signin
from planner.ui.session import Signer
from planner.ui.web import Ui, UiBinding


def create_ui_router(app: App, signer: Signer | None = None) -> APIRouter:
    """The dashboard's routes; ``signer`` (default: keys from PLANNER_SIGNING_SECRET) signs the
    session cookies and CSRF tokens."""
    binding = [Depends(UiBinding(Ui(app, signer)))]
    router = APIRouter(include_in_schema=False)
    for part in (signin.router, pages.router, monitor.router, actions.router):
        router.include_router(part, dependencies=binding)
    return router
