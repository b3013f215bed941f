"""The sandbox operator templates render in: Jinja2's immutable sandbox, with a bound on the work one
rendering may do and on the text it may make.

Templates are files an operator writes, rendered by every worker for every message: a mistake in
one (a loop over ``range(10**5)`` inside another) must fail that message quickly with a template
error, not hold a worker for minutes. So, besides the sandbox's own rules (no private attributes,
no changing lists or dicts, ``range`` at most 100,000 items):

- **Work**: each loop iteration and each call (function, method, filter, macro) is a step; a
  rendering past :data:`MAX_STEPS` steps stops. Steps are counted, not timed, so the bound is the
  same on every machine and under a frozen clock (the testing kit's): 0.01 to 0.25 CPU seconds,
  by what the steps are (bench/template_sandbox.py).
- **Size**: the rendered text, and every value the template builds (``~``, ``+``, ``*``, ``%``, what
  a call or a filter returns), at most :data:`MAX_CHARS` characters; what one step could make huge
  at once (``"x" * 10**9``, ``2 ** 10**9``, ``"x".center(10**9)``, a format width of a billion) is
  refused before it is computed.

Past a bound the rendering raises :class:`TemplateLimit`, a ``jinja2.TemplateError``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from functools import wraps
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

#: Loop iterations and calls one rendering may make.
MAX_STEPS = 100_000
#: Characters of rendered text (per template: a subject, a text body, an HTML body), and of any
#: value a template builds.
MAX_CHARS = 1_000_000
#: The largest integer a template may compute, in bits (a 300-digit number).
MAX_INT_BITS = 1000

#: The string methods whose integer arguments are widths of the text they make.
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})
#: A format string asking for a huge width or precision, or taking one from its arguments.
_WIDE_BRACES = re.compile(r"\{[^{}]*(?:\{|[0-9]{7,})")
_WIDE_PERCENT = re.compile(r"%[^a-zA-Z%]*?(?:\*|[0-9]{7,})")


class TemplateLimit(jinja2.TemplateRuntimeError):
    """A rendering went past one of the sandbox's bounds."""


class _Budget:
    __slots__ = ("steps",)

    def __init__(self) -> None:
        self.steps = MAX_STEPS


#: The steps left to the rendering running in this context (None outside :func:`render`).
_budget: ContextVar[_Budget | None] = ContextVar("planner_template_budget", default=None)


def _step() -> None:
    budget = _budget.get()
    if budget is not None:
        budget.steps -= 1
        if budget.steps < 0:
            raise TemplateLimit(
                f"more than {MAX_STEPS:,} steps (loop iterations and calls); expected a template that "
                "ends sooner"
            )


def _sized(value: Any) -> Any:
    if isinstance(value, str | list | tuple | dict) and len(value) > MAX_CHARS:
        raise TemplateLimit(f"a value of {len(value):,} items; expected at most {MAX_CHARS:,}")
    return value


def _width(value: Any) -> None:
    if isinstance(value, int) and abs(value) > MAX_CHARS:
        raise TemplateLimit(f"a width of {value:,}; expected at most {MAX_CHARS:,}")


def _format_string(value: Any, pattern: re.Pattern[str]) -> None:
    if isinstance(value, str) and pattern.search(value):
        raise TemplateLimit(
            f"a format asking for a width over {MAX_CHARS:,} or taking it from an argument: {value[:60]!r}"
        )


def _replacing(text: str, args: tuple[Any, ...]) -> None:
    """``text.replace(old, new)`` may multiply its length: refuse before, not after."""
    if len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        grows = (text.count(args[0]) if args[0] else len(text) + 1) * len(args[1])
        if len(text) + grows > MAX_CHARS:
            raise TemplateLimit(f"a replacement making over {MAX_CHARS:,} characters")


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, counting steps and bounding sizes (see the module's docstring)."""

    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        # Lorem ipsum of any length in one call; no message needs it.
        self.globals.pop("lipsum", None)
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}
        self.filters["_steps"] = _counted
        self.filters["_sized"] = _sized

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """The template's tree, each loop counting its iterations and each ``~`` its size."""
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, "_steps", [], [], None, None, lineno=loop.lineno)
        for concat in list(tree.find_all(nodes.Concat)):
            _wrap(tree, concat, "_sized")
        return tree

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        _step()
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int):
                    _width(len(seq) * times)
            ints = isinstance(left, int) and isinstance(right, int)
            if ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise TemplateLimit(f"a product of over {MAX_INT_BITS} bits")
        elif operator == "**" and isinstance(left, int) and isinstance(right, int):
            if abs(left) > 1 and right * math.log2(abs(left)) > MAX_INT_BITS:
                raise TemplateLimit(f"{left} ** {right} has over {MAX_INT_BITS} bits")
        elif operator == "%":
            _format_string(left, _WIDE_PERCENT)
        return _sized(super().call_binop(context, operator, left, right))

    def call(__self, __context: jinja2.runtime.Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _step()
        target = getattr(__obj, "__wrapped__", __obj)  # str.format comes wrapped by the sandbox
        owner = getattr(target, "__self__", None)
        if isinstance(owner, str):
            name = getattr(target, "__name__", "")
            if name in _WIDTH_METHODS:
                for value in (*args, *kwargs.values()):
                    _width(value)
            elif name in ("format", "format_map"):
                _format_string(owner, _WIDE_BRACES)
            elif name == "replace":
                _replacing(owner, args)
        return _sized(super().call(__context, __obj, *args, **kwargs))


def _wrap(tree: nodes.Node, target: nodes.Node, filter_name: str) -> None:
    """Replace ``target`` in ``tree`` with ``target|filter_name``."""
    for parent in tree.find_all(nodes.Node):
        for field in parent.fields:
            value = getattr(parent, field, None)
            if value is target:
                setattr(parent, field, nodes.Filter(target, filter_name, [], [], None, None))
                return
            if isinstance(value, list) and any(item is target for item in value):
                index = next(i for i, item in enumerate(value) if item is target)
                value[index] = nodes.Filter(target, filter_name, [], [], None, None)
                return


def _counted(iterable: Iterable[Any]) -> Iterator[Any]:
    for item in iterable:
        _step()
        yield item


def _bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` counting a step per call, refusing what would be huge before it is made, and
    sizing what it returns."""
    check = _FILTER_CHECKS.get(name)

    @wraps(function)  # keeps jinja's pass_context/pass_eval_context/pass_environment marks
    def bounded(*args: Any, **kwargs: Any) -> Any:
        _step()
        if check is not None:
            # The value and the template's arguments, without what jinja passes first.
            given = [a for a in args if not isinstance(a, _PASSED)]
            check(given[0] if given else None, given[1:], kwargs)
        return _sized(function(*args, **kwargs))

    return bounded


def _argument(args: list[Any], kwargs: dict[str, Any], index: int, name: str, default: Any) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


def _indent(value: Any, args: list[Any], kwargs: dict[str, Any]) -> None:
    width = _argument(args, kwargs, 0, "width", 4)
    lines = value.count("\n") + 1 if isinstance(value, str) else 1
    _width((len(width) if isinstance(width, str) else width) * lines)


def _join(value: Any, args: list[Any], kwargs: dict[str, Any]) -> None:
    if isinstance(value, list | tuple):
        glue = _argument(args, kwargs, 0, "d", "")
        total = sum(len(v) if isinstance(v, str) else 20 for v in value) + len(str(glue)) * len(value)
        if total > MAX_CHARS:
            raise TemplateLimit(f"joining {total:,} characters; expected at most {MAX_CHARS:,}")


def _sum(value: Any, args: list[Any], kwargs: dict[str, Any]) -> None:
    start = _argument(args, kwargs, 1, "start", 0)
    if not isinstance(start, int | float):  # adding sequences one by one is quadratic
        raise TemplateLimit(f"sum starting from {type(start).__name__}; expected numbers")


def _one_width(name: str, index: int = 0) -> Callable[[Any, list[Any], dict[str, Any]], None]:
    return lambda value, args, kwargs: _width(_argument(args, kwargs, index, name, 0))


_PASSED = (jinja2.runtime.Context, jinja2.nodes.EvalContext, jinja2.Environment)
_FILTER_CHECKS: dict[str, Callable[[Any, list[Any], dict[str, Any]], None]] = {
    "center": _one_width("width"),
    "wordwrap": _one_width("width"),
    "batch": _one_width("linecount"),
    "slice": _one_width("slices"),
    "indent": _indent,
    "join": _join,
    "sum": _sum,
    "format": lambda value, args, kwargs: _format_string(value, _WIDE_PERCENT),
    "replace": lambda value, args, kwargs: _replacing(str(value), tuple(args)),
}


def render(
    template: jinja2.Template, variables: dict[str, Any], globals_: dict[str, Any] | None = None
) -> str:
    """``template`` rendered with ``variables``, within the bounds: past one, :class:`TemplateLimit`.

    ``globals_``: the template's globals as one plain dict, when the caller keeps them (Jinja keeps
    them in a ChainMap it would flatten on every rendering).
    """
    token = _budget.set(_Budget())
    try:
        merged = {**(template.globals if globals_ is None else globals_), **variables}
        context = template.new_context(merged, shared=True)
        parts, size = [], 0
        for part in template.root_render_func(context):
            size += len(part)
            if size > MAX_CHARS:
                raise TemplateLimit(f"over {MAX_CHARS:,} characters of text; expected a shorter message")
            parts.append(part)
        return "".join(parts)
    except Exception:
        template.environment.handle_exception()  # re-raises, with the template's lines in the traceback
        raise  # not reached
    finally:
        _budget.reset(token)
