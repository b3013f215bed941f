"""SQL and dialect branches live in planner.store: the import contracts in pyproject.toml forbid
SQLAlchemy and planner.store.dialect elsewhere; this forbids what an import cannot show, asking an
engine or a connection its dialect's name."""

from __future__ import annotations

import ast
from pathlib import Path

import planner

PLANNER = Path(planner.__file__).parent


def dialect_name_reads(path: Path) -> list[int]:
    """Lines of ``<anything>.dialect.name`` or ``dialect.name`` in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return sorted(
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr == "name"
        and (
            (isinstance(node.value, ast.Attribute) and node.value.attr == "dialect")
            or (isinstance(node.value, ast.Name) and node.value.id == "dialect")
        )
    )


def test_only_the_store_asks_which_dialect_it_is_on() -> None:
    found = {
        str(path.relative_to(PLANNER)): lines
        for path in sorted(PLANNER.rglob("*.py"))
        if path.relative_to(PLANNER).parts[0] != "store" and (lines := dialect_name_reads(path))
    }
    assert not found, found


def test_the_check_sees_a_dialect_branch(tmp_path: Path) -> None:
    source = tmp_path / "branch.py"
    source.write_text(
        "def f(session, engine):\n"
        '    if session.get_bind().dialect.name == "sqlite":\n'
        "        return 1\n"
        "    dialect = engine.dialect\n"
        '    return dialect.name == "postgresql"\n'
    )
    assert dialect_name_reads(source) == [2, 5]
