"""Every ``planner.…`` and ``adapters.…`` name a docstring or a comment mentions exists: a module, or a
name in one. Modules move; their mentions must move with them."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import planner
from tests.dotted_names import resolves

ROOT = Path(planner.__file__).parent.parent
DOTTED = re.compile(r"\b(?:planner|adapters)(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
#: Dotted names that are not Python: the settings file and the adapters' entry-point group.
NOT_PYTHON = {"planner.toml", "planner.adapters"}


def _texts(path: Path) -> list[tuple[int, str]]:
    """The docstrings and comments of ``path``, with their line numbers."""
    source = path.read_text()
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                found.append((getattr(node, "lineno", 1), doc))
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            found.append((token.start[0], token.string))
    return found


def test_every_name_mentioned_exists() -> None:
    stale = [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for folder in ("planner", "adapters")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for line, text in _texts(path)
        for name in DOTTED.findall(text)
        if name not in NOT_PYTHON and not resolves(name)
    ]
    assert stale == []
