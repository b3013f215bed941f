"""The operator dashboard at ``/ui``: server-rendered pages over the operations layer.

:func:`create_ui_router` is mounted by :func:`planner.api.create_api`. Inside: ``signin``, ``pages``
and ``actions`` hold the routes (module-level routers), ``forms`` reads query strings and form
fields, ``web`` is the shared plumbing (templates, session check, error pages), ``session`` the
sessions (database rows named by a signed cookie), and ``charts`` the server-drawn SVG.
"""

from planner.ui.router import create_ui_router

__all__ = ["create_ui_router"]
