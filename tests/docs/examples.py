"""How the code blocks of the documentation are run: Sybil parses each page, and each fenced block
runs by its language.

* ``python``: executed as written, each block on its own; on the testing page (``testing.md``) a
  block is a whole test file, so pytest runs the page's files in a child process, as a user's suite
  would (:func:`run_test_files`);
* ``sh``: run with ``bash -euo pipefail`` in the page's working directory (blocks of one page share
  it, in order), with this environment's ``planner`` first on ``PATH`` and no ``PLANNER_*`` variable;
* ``console``: a shell session: each ``$ command`` runs like an ``sh`` block, and what it prints
  (stderr, then stdout) must be the lines that follow it; ``...`` ends a line early or stands for
  any number of lines. A command whose output starts with ``error:`` must also exit non-zero;
* ``jsonl``: imported with ``planner import`` into a fresh embedded service (it must be accepted);
* ``json`` and ``toml``: parsed;
* any other block fails, unless a ``<!-- skip: next "reason" -->`` comment before it says why it is
  not run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path

from sybil import Document, Example, Region, Sybil
from sybil.parsers.markdown import CodeBlockParser, SkipParser
from sybil.parsers.markdown.lexers import FencedCodeBlockLexer

DOCS = Path(__file__).resolve().parents[2] / "docs"
#: The page whose Python blocks are test files.
TEST_FILE_PAGES = frozenset({"testing.md"})
RUN_LANGUAGES = frozenset({"python", "sh", "console", "jsonl", "json", "toml"})
TIMEOUT = 600


def clean_env() -> dict[str, str]:
    """This environment without ``PLANNER_*`` settings, with its ``planner`` first on ``PATH``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLANNER_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PLANNER_LOG_LEVEL"] = "WARNING"
    return env


def workdir(example: Example) -> Path:
    """The page's working directory, set by the test that runs the page."""
    return Path(example.namespace["workdir"])


def _failed(what: str, done: subprocess.CompletedProcess[str]) -> str | None:
    if done.returncode == 0:
        return None
    return f"{what} exited {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"


def run_python(example: Example) -> None:
    source = str(example.parsed)
    if Path(example.path).name in TEST_FILE_PAGES:
        return run_test_file(example, source)
    code = compile(source, f"{example.path}:{example.line}", "exec")
    exec(code, {"__name__": "__docs__"})  # each block on its own: a reader may copy any one of them
    return None


def run_test_file(example: Example, source: str) -> None:
    """Write the block as a test file of the page's test directory; :func:`run_test_files` runs them."""
    directory = workdir(example) / "tests"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"test_line_{example.line}.py").write_text(source, encoding="utf-8")


def run_test_files(directory: Path) -> str | None:
    """pytest over the test files the page's blocks wrote (one run, as a user's suite would be)."""
    tests = directory / "tests"
    if not tests.is_dir():
        return None
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", "."],
        cwd=tests,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    return _failed("pytest on the page's test files (test_line_N.py: the block at line N)", done)


def run_shell(example: Example) -> str | None:
    directory = workdir(example) / "sh"
    directory.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", str(example.parsed)],
        cwd=directory,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    return _failed(f"the shell block at {example.path}:{example.line}", done)


def _session(source: str) -> list[tuple[str, list[str]]]:
    """(command, the output lines shown after it) for each ``$ `` line of a console block."""
    steps: list[tuple[str, list[str]]] = []
    for line in source.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps:
            steps[-1][1].append(line)
        elif line.strip():
            raise ValueError(f"a console block starts with '$ command', not {line!r}")
    return steps


def _matches(shown: list[str], printed: list[str]) -> bool:
    """Whether ``printed`` fits ``shown``: a line ending in ``...`` matches any line it starts,
    a line that is only ``...`` any number of lines."""
    if not shown:
        return not printed
    head, rest = shown[0], shown[1:]
    if head.strip() == "...":
        return any(_matches(rest, printed[i:]) for i in range(len(printed) + 1))
    if not printed:
        return False
    line = printed[0]
    fits = line.startswith(head[:-3]) if head.endswith("...") else line.rstrip() == head.rstrip()
    return fits and _matches(rest, printed[1:])


def run_console(example: Example) -> str | None:
    directory = workdir(example) / "sh"
    directory.mkdir(parents=True, exist_ok=True)
    for command, shown in _session(str(example.parsed)):
        done = subprocess.run(
            ["bash", "-o", "pipefail", "-c", command],
            cwd=directory,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        printed = (done.stderr + done.stdout).splitlines()
        while shown and not shown[-1].strip():
            shown = shown[:-1]
        if not _matches(shown, printed):
            return f"$ {command}\nshown:\n" + "\n".join(shown) + "\nprinted:\n" + "\n".join(printed)
        if shown and shown[0].startswith("error:") and done.returncode == 0:
            return f"$ {command}\nprinted an error but exited 0"
    return None


def run_import(example: Example) -> str | None:
    directory = workdir(example) / f"import_{example.line}"
    directory.mkdir(parents=True)
    (directory / "lines.jsonl").write_text(str(example.parsed), encoding="utf-8")
    done = subprocess.run(
        ["planner", "import", "lines.jsonl"],
        cwd=directory,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    return _failed(f"planner import of the block at {example.path}:{example.line}", done)


def parse_json(example: Example) -> None:
    json.loads(str(example.parsed))


def parse_toml(example: Example) -> None:
    tomllib.loads(str(example.parsed))


def not_run(example: Example) -> str:
    return (
        f"{example.path}:{example.line}: a {example.region.parsed!r} block is not run; run it or put "
        '<!-- skip: next "why it is not run" --> before it'
    )


class OtherBlocks:
    """Every fenced block in a language nothing runs, so that it fails unless it is skipped."""

    def __init__(self) -> None:
        self.lexer = FencedCodeBlockLexer(language=r"[^\n]*", mapping={"language": "language"})

    def __call__(self, document: Document) -> Iterable[Region]:
        for region in self.lexer(document):
            language = region.lexemes["language"].strip()
            if language not in RUN_LANGUAGES:
                region.parsed = language or "(no language)"
                region.evaluator = not_run
                yield region


SYBIL = Sybil(
    parsers=[
        SkipParser(),
        CodeBlockParser("python", evaluator=run_python),
        CodeBlockParser("sh", evaluator=run_shell),
        CodeBlockParser("console", evaluator=run_console),
        CodeBlockParser("jsonl", evaluator=run_import),
        CodeBlockParser("json", evaluator=parse_json),
        CodeBlockParser("toml", evaluator=parse_toml),
        OtherBlocks(),
    ],
    path=str(DOCS),
    pattern="*.md",
)


def pages() -> list[Path]:
    """Every page of the site (notes and build helpers are not pages)."""
    return sorted(p for p in DOCS.rglob("*.md") if not any(part.startswith("_") for part in p.parts))
