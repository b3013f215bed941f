"""The template sandbox: what its bounds cost a runaway template, and an ordinary one.

For each runaway template (the shapes a rendering spends its steps on fastest and slowest), the CPU
seconds until the bound stops it; for the built-in templates, CPU microseconds a rendering in the
bounded sandbox and in plain Jinja. Prints JSON.

    .venv/bin/python bench/template_sandbox.py
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RUNAWAY = {
    "empty nested loops": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "loop.index in nested loops": (
        "{% for i in range(100000) %}{% for j in range(100000) %}{{ loop.index }}{% endfor %}{% endfor %}"
    ),
    "filters in a loop": "{% for i in range(100000) %}{{ i|string|upper|lower|trim }}{% endfor %}",
    "recursive macro": (
        "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(40) }}"
    ),
    "output": "{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}",
    "doubling a string": (
        "{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}"
    ),
}
DIGEST = {
    "recipient": {"external_id": "u-1"},
    "events": [{"occurred_local": "2026-03-01 09:00", "data": {"author": "Bo", "text": "hi"}}] * 50,
    "events_total": 50,
    "events_more": 0,
}
BRIEF = {"recipient": {"external_id": "u-1"}, "local_date": "2026-03-02", "scheduled_local": "x", "data": {}}


def cpu(action: Callable[[], Any], repeat: int = 1) -> float:
    started = time.process_time()
    for _ in range(repeat):
        action()
    return (time.process_time() - started) / repeat


def main() -> int:
    import jinja2

    from planner.delivery import sandbox
    from planner.delivery.template_files import BUILTIN

    env = sandbox.BoundedSandbox(undefined=jinja2.StrictUndefined)
    stopped: dict[str, float] = {}
    for name, source in RUNAWAY.items():
        template = env.from_string(source)

        def run(template: jinja2.Template = template) -> None:
            try:
                sandbox.render(template, {})
            except sandbox.TemplateLimit:
                return
            raise AssertionError("not stopped")

        stopped[name] = round(cpu(run), 3)
    plain = jinja2.Environment(loader=jinja2.FileSystemLoader(BUILTIN), undefined=jinja2.StrictUndefined)
    boxed = sandbox.BoundedSandbox(loader=jinja2.FileSystemLoader(BUILTIN), undefined=jinja2.StrictUndefined)
    ordinary = {}
    for name, context in (("comments_digest/email.txt", DIGEST), ("daily_brief/email.txt", BRIEF)):
        fast, bounded = plain.get_template(name), boxed.get_template(name)
        ordinary[name] = {
            "plain_jinja_us": round(cpu(lambda t=fast, c=context: t.render(c), 2000) * 1e6, 1),
            "bounded_sandbox_us": round(
                cpu(lambda t=bounded, c=context: sandbox.render(t, c), 2000) * 1e6, 1
            ),
        }
    print(json.dumps({"max_steps": sandbox.MAX_STEPS, "cpu_seconds_until_stopped": stopped,
                      "ordinary": ordinary}, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
