"""werf.yaml rendered with Jinja2 in its sandbox: ``env("NAME", "default")`` reads the environment,
``project_dir`` is the project directory, nothing can run code, and every way a template could grow without
bound (``*``, ``**``, format widths, ``range``, list growth, the rendered size) is capped. A template error is a
``ConfigError`` naming the file and the line."""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

from ci_env.errors import ConfigError

#: the most characters (or items) one ``*``, one format width or one string method in werf.yaml may produce,
#: and the largest exponent of ``**``
MAX_REPEAT = 1_000_000
MAX_EXPONENT = 1_000
#: the most characters a rendered werf.yaml may have (real ones have a few thousand), the most items all the
#: ``range()`` calls of one render may produce together (nested loops multiply), and the most characters or
#: items one render may add to lists (``list.append`` in a loop)
MAX_RENDERED = 4_000_000
MAX_RANGE_ITEMS = 1_000_000
MAX_LIST_GROWTH = 4_000_000
#: a ``%`` conversion: its width and precision (digits, or ``*`` taken from the arguments)
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
#: Jinja2's default globals a werf.yaml has no use for (``lipsum(n)`` makes ``n`` paragraphs of text)
_DROPPED_GLOBALS = ("lipsum",)


def _size(value: Any, limit: int) -> int:
    """About how many characters ``str(value)`` has, counted no further than just past ``limit`` (shared items
    count each time they appear, as they would in the string)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, (list, tuple, dict)):
        total = 2
        for item in (value.items() if isinstance(value, dict) else value):
            total += _size(item, limit - total) + 2
            if total > limit:
                break
        return total
    return len(str(value)) if isinstance(value, (int, float, bool)) or value is None else 16


def _sandbox(jinja2: Any) -> Any:
    """Jinja2's sandbox (no attribute starting with ``_``, no unsafe methods, bounded ``range``) that also
    bounds ``*``, ``**``, format widths (``%``, ``.format``, the ``format``, ``center`` and ``indent`` filters),
    the string methods that grow a string, ``join``, what a ``namespace`` holds, what lists grow by and the
    items of all ``range()`` calls together (nested loops), so werf.yaml can neither run code nor make one huge
    value. Each environment is for one render (the range and list budgets are per render).

    Size: one function on purpose: the sandbox's caps close over each other and over one render's counters."""
    from jinja2 import pass_eval_context
    from jinja2.exceptions import SecurityError
    from jinja2.sandbox import SandboxedEnvironment
    from jinja2.utils import Namespace

    spent = {"range": 0, "lists": 0}

    def spend(kind: str, amount: int, limit: int, what: str) -> None:
        spent[kind] += amount
        if spent[kind] > limit:
            raise SecurityError(f"{what} is too large (more than {limit} in all)")

    def bounded(size: int, what: str) -> None:
        if size > MAX_REPEAT:
            raise SecurityError(f"{what} of {size} characters is too large (at most {MAX_REPEAT})")

    def ints(values: Any) -> list[int]:
        items = values if isinstance(values, (tuple, list)) else (values,)
        return [v for v in items if isinstance(v, int) and not isinstance(v, bool)]

    def check_percent(template: str, values: Any) -> None:
        for match in _PERCENT_SPEC.finditer(template):
            for number in match.groups():
                if number == "*":
                    for value in ints(values):
                        bounded(value, "a format width")
                elif number:
                    bounded(int(number), "a format width")

    def check_format(template: str, args: Any, kwargs: Any) -> None:
        for _, _, spec, _ in string.Formatter().parse(template):
            if spec and "{" in spec:  # a width from the arguments
                for value in ints(list(args) + list(kwargs.values())):
                    bounded(value, "a format width")
            for number in re.findall(r"\d+", spec or ""):
                bounded(int(number), "a format width")

    def check_str_method(text: str, name: str, args: tuple[Any, ...]) -> None:
        if name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
            grows = len(args[1]) - len(args[0])
            bounded(len(text) + max(grows, 0) * (text.count(args[0]) if args[0] else len(text) + 1),
                    "a replace() result")
        elif name == "expandtabs":
            bounded(len(text) + text.count("\t") * max(ints(args) or [8]), "an expandtabs() result")
        for value in ints(args):
            bounded(value, f"a {name}() width")

    class Sandbox(SandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**", "%"})

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator == "**" and isinstance(right, (int, float)) and abs(right) > MAX_EXPONENT:
                raise SecurityError(f"exponent {right} is too large (at most {MAX_EXPONENT})")
            if operator == "*":
                for seq, count in ((left, right), (right, left)):
                    if isinstance(seq, (str, list, tuple)) and isinstance(count, int) \
                            and len(seq) * count > MAX_REPEAT:
                        raise SecurityError(f"a repetition of {len(seq) * count} items is too large "
                                            f"(at most {MAX_REPEAT})")
            if operator == "%" and isinstance(left, str):
                check_percent(left, right)
            return super().call_binop(context, operator, left, right)

        def wrap_str_format(self, value: Any) -> Any:
            wrapped = super().wrap_str_format(value)
            if wrapped is None:
                return None
            template, is_map = value.__self__, value.__name__ == "format_map"

            def checked(*args: Any, **kwargs: Any) -> Any:
                if is_map:
                    check_format(template, (), args[0] if args and isinstance(args[0], dict) else {})
                else:
                    check_format(template, args, kwargs)
                return wrapped(*args, **kwargs)

            return checked

        def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
            owner = getattr(__obj, "__self__", None)
            if isinstance(owner, str):
                check_str_method(owner, getattr(__obj, "__name__", ""), (*args, *kwargs.values()))
            elif isinstance(owner, (list, dict)) and getattr(__obj, "__name__", "") in _GROWING_METHODS:
                added = _size([*args, *kwargs.values()], MAX_LIST_GROWTH)
                spend("lists", added, MAX_LIST_GROWTH, "what the template adds to lists and dicts")
            return super().call(__context, __obj, *args, **kwargs)

    class BoundedNamespace(Namespace):
        """``namespace()``: a value it holds is bounded like one ``*`` result (no doubling in a loop)."""

        def __setitem__(self, name: str, value: Any) -> None:
            size = _size(value, MAX_REPEAT)
            if size > MAX_REPEAT:
                raise SecurityError(f"a namespace value of {size} characters is too large (at most {MAX_REPEAT})")
            super().__setitem__(name, value)

    environment = Sandbox(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    filters = environment.filters
    original_format, original_center, original_indent = filters["format"], filters["center"], filters["indent"]

    def format_filter(value: Any, *args: Any, **kwargs: Any) -> Any:
        check_percent(str(value), kwargs or args)
        return original_format(value, *args, **kwargs)

    def center_filter(value: Any, width: int = 80) -> Any:
        bounded(int(width), "a center() width")
        return original_center(value, width)

    def indent_filter(value: Any, width: Any = 4, *args: Any, **kwargs: Any) -> Any:
        if isinstance(width, int):
            bounded(width * (str(value).count("\n") + 1), "an indent() result")
        return original_indent(value, width, *args, **kwargs)

    original_join = filters["join"]

    @pass_eval_context
    def join_filter(eval_ctx: Any, value: Any, d: str = "", attribute: Any = None) -> Any:
        items = list(value) if attribute is None else value
        if attribute is None:
            size = _size(items, MAX_REPEAT) + len(str(d)) * max(len(items) - 1, 0)
            bounded(size, "a join() result")
        return original_join(eval_ctx, items, d, attribute)

    safe_range = cast("Callable[..., range]", environment.globals["range"])

    def range_global(*args: Any) -> Any:
        produced = safe_range(*args)
        spend("range", len(produced), MAX_RANGE_ITEMS, "the number of range() items the template loops over")
        return produced

    filters.update({"format": format_filter, "center": center_filter, "indent": indent_filter,
                    "join": join_filter})
    environment.globals.update({"range": range_global, "namespace": BoundedNamespace})
    for name in _DROPPED_GLOBALS:
        environment.globals.pop(name, None)
    return environment


#: list and dict methods that make them hold more
_GROWING_METHODS = frozenset({"append", "extend", "insert", "update", "setdefault"})


def render(text: str, path: Path, directory: Path, env: Mapping[str, str]) -> str:
    """Render the Jinja2 template ``text`` in Jinja2's sandbox; a template error names the file and line.

    Only ``env(NAME[, DEFAULT])`` and ``project_dir`` are given to the template. The sandbox refuses attributes
    starting with ``_`` (``env.__globals__``, ``''.__class__``), so werf.yaml cannot reach Python objects or run
    code: such a template is a ConfigError naming the file and line, like any other template error.
    """
    import jinja2

    def env_function(name: str, default: str | None = None) -> str:
        if name in env:
            return env[name]
        if default is None:
            raise ConfigError(
                f"{path}: env({name!r}) is not set and has no default; set {name} or write env({name!r}, 'default')"
            )
        return default

    environment = _sandbox(jinja2)
    try:
        template = environment.from_string(text)
        return _bounded_render(template, {"env": env_function, "project_dir": str(directory)}, path)
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: template error: {exc.message}") from None
    except jinja2.TemplateError as exc:
        line = _template_error_line(exc)
        where = f"{path}:{line}" if line else str(path)
        raise ConfigError(f"{where}: template error: {exc}") from None
    except ConfigError:
        raise
    except Exception as exc:  # Python failing under the template: 1 / 0, range(10 ** 9), a macro without end
        line = _template_error_line(exc)
        where = f"{path}:{line}" if line else str(path)
        detail = " ".join(str(exc).split())[:200]
        raise ConfigError(f"{where}: template error: {type(exc).__name__}: {detail}") from None


def _bounded_render(template: Any, variables: Mapping[str, Any], path: Path) -> str:
    """The template rendered piece by piece, stopped (ConfigError naming the line reached) once the output
    passes :data:`MAX_RENDERED` characters, before it is ever held whole."""
    generator = template.generate(**variables)
    pieces: list[str] = []
    size = 0
    for piece in generator:
        size += len(piece)
        if size > MAX_RENDERED:
            line = _generator_line(template, generator)
            generator.close()
            where = f"{path}:{line}" if line else str(path)
            raise ConfigError(f"{where}: template error: the rendered werf.yaml is too large (more than "
                              f"{MAX_RENDERED} characters; loops that repeat too much?)")
        pieces.append(piece)
    return "".join(pieces)


def _generator_line(template: Any, generator: Any) -> int | None:
    """The werf.yaml line a suspended render is at (best effort)."""
    inner = generator
    while getattr(inner, "gi_yieldfrom", None) is not None:
        inner = inner.gi_yieldfrom
    frame = getattr(inner, "gi_frame", None)
    if frame is None or frame.f_code.co_filename != "<template>":
        return None
    line = template.get_corresponding_lineno(frame.f_lineno)
    return int(line) if line else None


def _template_error_line(exc: BaseException) -> int | None:
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
