"""werf.yaml: the project's images, rendered with Jinja2 and validated with line numbers.

The file is a multi-document YAML stream: one meta document (``project: NAME``,
``configVersion: 1``) and one document per image (``image: NAME`` or
``image: ~``, with ``dockerfile``, ``context``, ``target``, ``args``). Before
parsing it is rendered with Jinja2, where ``env("NAME", "default")`` reads the
environment and ``project_dir`` is the project directory; it is rendered in Jinja2's
sandbox, so it cannot run code. Build contexts and Dockerfiles must lie inside the
project directory (after following symlinks). Every mistake is a ``ConfigError``
naming the file, the line and what to do.
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ci_env.errors import ConfigError

if TYPE_CHECKING:
    from ci_env.cleanup.keep_policies import CleanupConfig

DEFAULT_CONFIG_NAMES = ("werf.yaml", "werf.yml")
META_KEYS = {"project": "the project name", "configVersion": "1",
             "cleanup": "keep policies and switches for cleanup (keepPolicies, ...)"}
IMAGE_KEYS = {
    "image": "the image name, or ~ for the one nameless image",
    "dockerfile": "path of the Dockerfile, relative to the context (default: Dockerfile)",
    "context": "build context directory, relative to the project directory (default: .)",
    "target": "the Dockerfile stage to build",
    "args": "build arguments, a mapping of names to values",
}
#: An image name is a path component of a repository and a tag prefix at once.
IMAGE_NAME = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
PROJECT_NAME = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
MAX_IMAGE_NAME = 64


@dataclass(frozen=True)
class ImageConfig:
    """One image of the project; ``name`` is None for the nameless image (``image: ~``)."""

    name: str | None
    context: Path
    dockerfile: Path
    target: str | None = None
    args: Mapping[str, str] = field(default_factory=dict)
    line: int = 0

    @property
    def display_name(self) -> str:
        """The name as users write it: ``~`` for the nameless image."""
        return "~" if self.name is None else self.name


@dataclass(frozen=True)
class ProjectConfig:
    """The parsed werf.yaml: the project name and its images, in file order."""

    project: str
    config_version: int
    images: tuple[ImageConfig, ...]
    path: Path
    directory: Path
    cleanup: CleanupConfig | None = None  #: the meta document's ``cleanup`` section (werf's defaults when absent)

    def image(self, name: str | None) -> ImageConfig:
        """The image called ``name`` (None or "~" for the nameless one); ConfigError if absent."""
        wanted = None if name in (None, "~") else name
        for image in self.images:
            if image.name == wanted:
                return image
        known = ", ".join(i.display_name for i in self.images)
        raise ConfigError(f"{self.path}: no image {name!r} in the project (its images: {known})")


def find_config(directory: Path, config: str | Path | None = None) -> Path:
    """The werf.yaml to read: ``config`` (relative to ``directory``) or werf.yaml/werf.yml in it."""
    if config is not None:
        path = Path(config)
        path = path if path.is_absolute() else directory / path
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist; pass --config with the path of your werf.yaml")
        return path
    for name in DEFAULT_CONFIG_NAMES:
        if (directory / name).is_file():
            return directory / name
    raise ConfigError(
        f"no werf.yaml in {directory}; run the command in the project directory, or pass --dir or --config"
    )


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
    value. Each environment is for one render (the range and list budgets are per render)."""
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

    @jinja2.pass_eval_context
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


def load_project(
    directory: str | Path = ".", config: str | Path | None = None, env: Mapping[str, str] | None = None
) -> ProjectConfig:
    """Read, render, parse and validate the project's werf.yaml; ConfigError on any mistake."""
    root = Path(directory).resolve()
    try:
        if not root.is_dir():
            raise ConfigError(f"project directory {root} does not exist; pass --dir with your project's directory")
        path = find_config(root, config)
    except OSError as exc:  # e.g. a name too long: is_dir()/is_file() raise it
        raise ConfigError(f"cannot use {exc.filename}: {exc.strerror}; check --dir and --config") from None
    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start}); save werf.yaml as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}; check its permissions") from None
    text = render(raw, path, root, os.environ if env is None else env)
    documents = _parse_documents(text, path)
    return _build_project(documents, path, root)


def _parse_documents(text: str, path: Path) -> list[tuple[dict[str, Any], dict[str, int], int, Any]]:
    """YAML documents as (mapping, line of each key, line of the document, the document's node), 1-based lines."""
    import yaml

    result: list[tuple[dict[str, Any], dict[str, int], int, Any]] = []
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}{where}: invalid YAML: {problem}") from None
    for node in nodes:
        if node is None:
            continue
        line = node.start_mark.line + 1
        if not isinstance(node, yaml.MappingNode):
            raise ConfigError(f"{path}:{line}: each document must be a mapping (project: ... or image: ...)")
        lines = {str(key.value): key.start_mark.line + 1 for key, _ in node.value}
        seen: set[str] = set()
        for key, _ in node.value:
            if key.value in seen:
                raise ConfigError(f"{path}:{key.start_mark.line + 1}: key {key.value!r} appears twice in one document")
            seen.add(key.value)
        value = yaml.SafeLoader(text).construct_document(node)
        result.append((value, lines, line, node))
    return result


def _check_keys(document: dict[str, Any], lines: dict[str, int], allowed: Mapping[str, str], path: Path) -> None:
    for key in document:
        if key not in allowed:
            valid = ", ".join(allowed)
            raise ConfigError(f"{path}:{lines.get(str(key), 0)}: unknown key {key!r} (valid keys here: {valid})")


def _build_project(
    documents: list[tuple[dict[str, Any], dict[str, int], int, Any]], path: Path, root: Path
) -> ProjectConfig:
    meta = [d for d in documents if "project" in d[0]]
    images = [d for d in documents if "project" not in d[0]]
    if not meta:
        raise ConfigError(f"{path}: no meta document; start the file with 'project: NAME' and 'configVersion: 1'")
    if len(meta) > 1:
        raise ConfigError(f"{path}:{meta[1][2]}: a second meta document; keep one 'project:' document")
    document, lines, line, node = meta[0]
    _check_keys(document, lines, META_KEYS, path)
    project = document.get("project")
    if not isinstance(project, str) or not PROJECT_NAME.match(project):
        raise ConfigError(
            f"{path}:{lines['project']}: invalid project name {project!r}; use lowercase letters, digits and '-'"
        )
    version = document.get("configVersion")
    if version != 1:
        raise ConfigError(f"{path}:{lines.get('configVersion', line)}: configVersion must be 1 (got {version!r})")
    parsed = tuple(_build_image(d, ln, at, path, root) for d, ln, at, _node in images)
    if not parsed:
        raise ConfigError(f"{path}: no images; add a document with 'image: NAME' (or 'image: ~')")
    _check_image_set(parsed, path)
    from ci_env.cleanup.keep_policies import parse_cleanup

    cleanup_node = next((value for key, value in node.value if key.value == "cleanup"), None)
    return ProjectConfig(project, 1, parsed, path, root, parse_cleanup(cleanup_node, path))


def _build_image(
    document: dict[str, Any], lines: dict[str, int], line: int, path: Path, root: Path
) -> ImageConfig:
    if "image" not in document:
        raise ConfigError(f"{path}:{line}: document has no 'image:' key; name the image, or write 'image: ~'")
    _check_keys(document, lines, IMAGE_KEYS, path)
    name = document["image"]
    at = lines["image"]
    if name is not None and not _valid_image_name(name):
        raise ConfigError(
            f"{path}:{at}: invalid image name {name!r}; use lowercase letters and digits separated by "
            f"'.', '_' or '-' (at most {MAX_IMAGE_NAME} characters), or ~ for the nameless image"
        )
    label = "~" if name is None else name
    context_text = document.get("context", ".")
    if not isinstance(context_text, str):
        raise ConfigError(f"{path}:{lines['context']}: context of image {label!r} must be a path")
    context = (root / context_text).resolve()
    where = lines.get("context", at)
    if not context.is_relative_to(root):
        raise ConfigError(
            f"{path}:{where}: context {context_text!r} of image {label!r} is outside the project directory {root} "
            f"(it resolves to {context}); a build context must be inside the project"
        )
    if not context.is_dir():
        raise ConfigError(f"{path}:{where}: context {context_text!r} of image {label!r} is not a directory")
    dockerfile_text = document.get("dockerfile", "Dockerfile")
    if not isinstance(dockerfile_text, str):
        raise ConfigError(f"{path}:{lines['dockerfile']}: dockerfile of image {label!r} must be a path")
    dockerfile = (context / dockerfile_text).resolve()
    if not dockerfile.is_relative_to(root):
        raise ConfigError(
            f"{path}:{lines.get('dockerfile', at)}: Dockerfile {dockerfile_text!r} of image {label!r} is outside the "
            f"project directory {root} (it resolves to {dockerfile}); keep the Dockerfile inside the project"
        )
    if not dockerfile.is_file():
        raise ConfigError(
            f"{path}:{lines.get('dockerfile', at)}: Dockerfile {dockerfile_text!r} of image {label!r} not found "
            f"(looked for {dockerfile}); fix 'dockerfile:' (relative to the context)"
        )
    target = document.get("target")
    if target is not None and not isinstance(target, str):
        raise ConfigError(f"{path}:{lines['target']}: target of image {label!r} must be a stage name")
    args = document.get("args") or {}
    if not isinstance(args, dict) or not all(isinstance(k, str) for k in args):
        raise ConfigError(f"{path}:{lines.get('args', at)}: args of image {label!r} must map names to values")
    for key, value in args.items():
        if isinstance(value, (dict, list)) or value is None:
            raise ConfigError(f"{path}:{lines['args']}: build arg {key!r} of image {label!r} must be a scalar")
    return ImageConfig(
        name=name,
        context=context,
        dockerfile=dockerfile,
        target=target,
        args={k: _scalar_text(v) for k, v in args.items()},
        line=at,
    )


def _valid_image_name(name: object) -> bool:
    return isinstance(name, str) and len(name) <= MAX_IMAGE_NAME and IMAGE_NAME.match(name) is not None


def _scalar_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _check_image_set(images: tuple[ImageConfig, ...], path: Path) -> None:
    seen: dict[str | None, int] = {}
    for image in images:
        if image.name in seen:
            if image.name is None:
                raise ConfigError(
                    f"{path}:{image.line}: a second nameless image (first at line {seen[None]}); "
                    "a project has at most one 'image: ~'"
                )
            raise ConfigError(
                f"{path}:{image.line}: image {image.name!r} is defined twice (first at line {seen[image.name]})"
            )
        seen[image.name] = image.line
    if None in seen and len(images) > 1:
        raise ConfigError(
            f"{path}:{seen[None]}: a nameless image (image: ~) cannot stand beside named images; "
            "give it a name or remove the others"
        )
