"""The operator dashboard at ``/ui``: server-rendered pages over the operations layer.

:func:`create_ui_router` is mounted by :func:`planner.api.create_api`.
"""

from planner.ui.routes import create_ui_router

__all__ = ["create_ui_router"]
