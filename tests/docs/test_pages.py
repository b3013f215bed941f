"""The documentation as a reader meets it: short README, no development history, and every public
name and source path it mentions exists (so a moved module cannot leave a stale mention behind)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.docs.examples import DOCS, pages
from tests.dotted_names import resolves

ROOT = DOCS.parent
README = ROOT / "README.md"
TEXTS = [README, *pages()]

#: ``planner.x`` or ``adapters.x``, not inside an address (``@planner.local``) or a URL.
DOTTED = re.compile(r"(?<![\w@./-])(?:planner|adapters)(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
#: Dotted names that are not Python: the settings file, the database file, the adapters' entry-point
#: group, and the Message-ID domain.
NOT_PYTHON = {"planner.toml", "planner.db", "planner.adapters", "planner.local"}
#: A source path of this repository, as the pages name them.
PATH = re.compile(r"(?<![\w/.-])(?:planner|adapters|bench|tests|fixtures|migrations)/[\w./-]*[\w/]")
#: How a development diary reads; history belongs in commit messages and the changelog.
HISTORY = re.compile(r"\bissue \d+|\bpass(?:es|ed)?\b|\bthis branch\b|\bbefore the fix\b|\bthis PR\b", re.I)


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_the_readme_is_short() -> None:
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 150


@pytest.mark.parametrize("path", TEXTS, ids=_shown)
def test_no_page_tells_the_history_of_its_making(path: Path) -> None:
    found = [
        f"{_shown(path)}:{number}: {match.group(0)!r}"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        for match in HISTORY.finditer(line)
    ]
    assert found == []


@pytest.mark.parametrize("path", TEXTS, ids=_shown)
def test_every_public_name_a_page_mentions_imports(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    stale = sorted({n for n in DOTTED.findall(text) if n not in NOT_PYTHON and not resolves(n)})
    assert stale == [], f"{_shown(path)} names what does not exist"


@pytest.mark.parametrize("path", TEXTS, ids=_shown)
def test_every_source_path_a_page_mentions_exists(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    missing = sorted({p for p in PATH.findall(text) if not (ROOT / p).exists()})
    assert missing == [], f"{_shown(path)} names files that do not exist"


def test_the_names_are_found() -> None:
    """The patterns above see what the pages show (a guard against a pattern matching nothing)."""
    text = (DOCS / "concepts" / "local-time.md").read_text(encoding="utf-8")
    assert "planner.tzdata_version" in DOTTED.findall(text)
    assert not resolves("planner.localtime.tzdata_version")
    assert resolves("planner.tzdata_version")


def test_the_readme_links_into_the_docs() -> None:
    text = README.read_text(encoding="utf-8")
    targets = re.findall(r"\]\((docs/[^)#\s]+)", text)
    assert targets, "the README links into the docs"
    assert [t for t in targets if not (ROOT / t).exists()] == []
