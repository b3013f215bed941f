"""The public API: every name ``planner`` and ``planner.testing`` list in ``__all__`` resolves."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("package", ["planner", "planner.testing"])
def test_every_public_name_resolves(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__all__, package
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"


def test_unknown_names_are_an_attribute_error() -> None:
    import planner

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        planner.nope  # noqa: B018
