"""Every code block of the documentation runs as written, or says why it does not (tests/docs/examples.py)."""

from __future__ import annotations

import re
import unittest
from pathlib import Path

import pytest

from tests.docs.examples import DOCS, SYBIL, pages, run_test_files

FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})", re.MULTILINE)


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_every_block_of_the_page_runs_or_says_why_not(page: Path, tmp_path: Path) -> None:
    document = SYBIL.parse(page)
    document.namespace["workdir"] = tmp_path
    blocks = 0
    for example in document.examples():
        is_block = not isinstance(example.region.parsed, tuple)  # a skip directive parses to a tuple
        try:
            example.evaluate()
        except unittest.SkipTest as reason:
            assert str(reason).strip(), f"{page}:{example.line}: a skipped block needs a reason"
        blocks += is_block
    failure = run_test_files(tmp_path)
    assert failure is None, failure
    # Sybil saw every fenced block of the page (an opening and a closing fence each).
    assert blocks == len(FENCE.findall(page.read_text(encoding="utf-8"))) // 2, page
