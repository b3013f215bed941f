"""The API's routes, one module per topic, each a module-level ``router`` of plain functions.

:func:`planner.api.app.create_api` includes them; they ask for the service and the caller through
:mod:`planner.api.dependencies`.
"""
