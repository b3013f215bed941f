"""Functions that fit on a screen and modules of one concept: no function over 60 lines and no module
over 500 lines in ``planner`` and ``adapters``."""

from __future__ import annotations

import ast
from pathlib import Path

import planner

ROOT = Path(planner.__file__).parent.parent
LONGEST_FUNCTION = 60
LONGEST_MODULE = 500


def _sources() -> list[Path]:
    return sorted(p for folder in ("planner", "adapters") for p in (ROOT / folder).rglob("*.py"))


def test_functions_fit_on_a_screen() -> None:
    long = [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in _sources()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > LONGEST_FUNCTION
    ]
    assert long == []


def test_modules_hold_one_concept() -> None:
    long = [
        f"{path.relative_to(ROOT)} ({n} lines)"
        for path in _sources()
        if (n := len(path.read_text().splitlines())) > LONGEST_MODULE
    ]
    assert long == []
