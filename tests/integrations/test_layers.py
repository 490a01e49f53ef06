"""The rules of docs/architecture.md held against the code: which parts of ``ci_env`` may import which, and no
import circle. Every import counts (module level, inside a function, under ``TYPE_CHECKING``): each is an
arrow a reader follows. And the size rule of CONTRIBUTING.md: a long function, or one with many parameters,
says why in its docstring."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "ci_env"

#: part -> the parts it must never import (a part is a module or a package, by dotted name)
NEVER = {
    "ci_env.contract": ("ci_env.",),
    "ci_env.patterns": ("ci_env.",),  # floor 1: users' regexes, imported by werf_config, retention, cleanup
    "ci_env.untrusted_json": ("ci_env.",),
    "ci_env.configjson": ("ci_env.registry", "ci_env.cleanup", "ci_env.steps", "ci_env.commands", "ci_env.records"),
    "ci_env.durations": ("ci_env.cleanup", "ci_env.steps", "ci_env.commands", "ci_env.records", "ci_env.registry"),
    "ci_env.records": ("ci_env.cleanup", "ci_env.steps", "ci_env.commands", "ci_env.werf_config"),
    "ci_env.werf_config": ("ci_env.cleanup", "ci_env.steps", "ci_env.commands", "ci_env.records", "ci_env.registry"),
    "ci_env.docker_daemon": ("ci_env.cleanup", "ci_env.steps", "ci_env.commands"),
    "ci_env.registry": ("ci_env.cleanup", "ci_env.steps", "ci_env.commands", "ci_env.records",
                        "ci_env.werf_config"),
    "ci_env.cleanup": ("ci_env.commands", "ci_env.steps"),
    "ci_env.steps": ("ci_env.commands", "ci_env.cleanup"),
}
#: a function longer than this (``def`` to its last line, docstring included) says why in its docstring
MAX_LINES = 60
#: ... and one taking more parameters than this (``self``, ``cls``, ``*args``, ``**kwargs`` not counted)
MAX_PARAMETERS = 8
#: how it says why: a paragraph starting ``Size:`` and giving the reason
SIZE_REASON = re.compile(r"^[ \t]*Size: \S.{20,}", re.MULTILINE)
#: import circles allowed for now (none: a new one fails the test)
KNOWN_CIRCLES: set[frozenset[str]] = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports() -> dict[str, list[tuple[str, int]]]:
    """module -> the ci_env modules it imports, with the line (``from ci_env.x import y`` counts as ``ci_env.x.y``
    when that is a module)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, list[tuple[str, int]]] = {}
    for name, path in modules.items():
        found: list[tuple[str, int]] = []
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found += [(a.name, node.lineno) for a in node.names if a.name.startswith("ci_env")]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                    and node.module.startswith("ci_env"):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    found.append((sub if sub in modules else node.module, node.lineno))
        graph[name] = [(target, line) for target, line in found if target in modules and target != name]
    return graph


def _within(name: str, part: str) -> bool:
    return name == part or name.startswith(part + ".") or (part.endswith(".") and name.startswith(part))


def test_no_part_imports_a_part_above_it() -> None:
    graph = _imports()
    broken = []
    for module, targets in graph.items():
        for part, forbidden in NEVER.items():
            if not _within(module, part):
                continue
            broken += [f"{module}:{line} imports {target}" for target, line in targets
                       if any(_within(target, f) for f in forbidden) and not _within(target, part)]
    assert broken == [], "imports against docs/architecture.md:\n" + "\n".join(broken)


def test_no_import_circle() -> None:
    graph = {module: {target for target, _ in targets} for module, targets in _imports().items()}
    circles: list[frozenset[str]] = []
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(frozenset(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    new = [sorted(c) for c in circles if c not in KNOWN_CIRCLES]
    assert new == [], f"import circles: {new}"


def _parameters(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    args = node.args
    return len([a for a in (*args.posonlyargs, *args.args, *args.kwonlyargs) if a.arg not in ("self", "cls")])


def _is_click_command(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(re.search(r"\b(command|group)\b", ast.unparse(d)) for d in node.decorator_list)


def test_long_functions_say_why_in_their_docstring() -> None:
    unexplained, in_help = [], []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            parameters = _parameters(node)
            if lines <= MAX_LINES and parameters <= MAX_PARAMETERS:
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines, {parameters} parameters)"
            doc = ast.get_docstring(node) or ""
            reason = SIZE_REASON.search(doc)
            if reason is None:
                unexplained.append(where)
            elif _is_click_command(node) and "\f" not in doc[:reason.start()]:
                in_help.append(where)  # click's --help shows the docstring up to a form feed
    assert unexplained == [], (
        f"over {MAX_LINES} lines or {MAX_PARAMETERS} parameters without a 'Size: <why>' paragraph in the "
        "docstring (CONTRIBUTING.md, Size):\n" + "\n".join(unexplained))
    assert in_help == [], "a click command's 'Size:' paragraph goes after a form feed (\\f):\n" + "\n".join(in_help)


def test_cleanup_makes_its_removers_in_one_place() -> None:
    """docs/architecture.md: ``cleanup/removing.py`` is the one place a cleanup run's remover is made, for the
    managed-image run and the run by retention rules alike."""
    makers = []
    for path in sorted((PACKAGE / "cleanup").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and ast.unparse(node.func).split(".")[-1] == "remover_for":
                makers.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert makers and all(m.startswith("ci_env/cleanup/removing.py:") for m in makers), makers
