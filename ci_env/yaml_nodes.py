"""Reading a YAML node tree (PyYAML's composed nodes) with ``file:line`` errors, the way werf.yaml's ``cleanup``
section is read: every mistake is a :class:`~ci_env.errors.ConfigError` naming the file, the line and what to
write instead."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ci_env.errors import ConfigError, did_you_mean

_NULL_TAG = "tag:yaml.org,2002:null"
_INT_TAG = "tag:yaml.org,2002:int"


def compose(path: Path, text: str) -> Any:
    """The YAML document in ``text`` as a node tree (None for an empty file); ConfigError with the line for a
    syntax error or more than one document."""
    import yaml

    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None
    if len(nodes) > 1:
        raise ConfigError(f"{path}:{nodes[1].start_mark.line + 1}: one YAML document expected, found several")
    return nodes[0] if nodes else None


def is_null(node: Any) -> bool:
    """True for a YAML null (``key:`` with nothing after it, ``~``, ``null``)."""
    return getattr(node, "tag", None) == _NULL_TAG


def line_of(node: Any) -> int:
    """The 1-based line where ``node`` starts."""
    return int(node.start_mark.line) + 1


class Reader:
    """Reads a node tree from ``path``, failing with ``file:line`` and what to write."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, node: Any, message: str) -> ConfigError:
        return ConfigError(f"{self.path}:{line_of(node)}: {message}")

    def mapping(self, node: Any, where: str, allowed: Mapping[str, str]) -> dict[str, tuple[Any, Any]]:
        """key -> (key node, value node); unknown keys and duplicates are errors naming the valid keys."""
        import yaml

        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{where} must be a mapping with keys {', '.join(allowed)}")
        result: dict[str, tuple[Any, Any]] = {}
        for key, value in node.value:
            name = str(key.value)
            if name not in allowed:
                valid = "; ".join(f"{k} ({v})" for k, v in allowed.items())
                raise self.fail(key, f"unknown key {name!r} in {where}{did_you_mean(name, allowed)} (valid keys here: "
                                    f"{valid})")
            if name in result:
                raise self.fail(key, f"key {name!r} appears twice in {where}")
            result[name] = (key, value)
        return result

    def sequence(self, node: Any, where: str, example: str) -> list[Any]:
        """The items of a YAML list; an error showing ``example`` for anything else."""
        import yaml

        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, f"{where} must be a list, e.g. {example}")
        return list(node.value)

    def scalar(self, node: Any, where: str) -> str:
        """A single non-empty value as text."""
        import yaml

        if not isinstance(node, yaml.ScalarNode) or node.value == "":
            raise self.fail(node, f"{where} must be a single value")
        return str(node.value)

    def strings(self, node: Any, where: str, example: str) -> list[tuple[str, Any]]:
        """A list of single values (or one value, taken as a list of one): (text, node) each."""
        import yaml

        items = [node] if isinstance(node, yaml.ScalarNode) else self.sequence(node, where, example)
        return [(self.scalar(item, f"each item of {where}"), item) for item in items]

    def integer(self, node: Any, where: str, minimum: int) -> int:
        """A whole number (YAML's integer), at least ``minimum``."""
        text = self.scalar(node, where)
        value: int | None = None
        if getattr(node, "tag", None) == _INT_TAG or getattr(node, "style", None) is None:
            try:
                value = int(text.replace("_", ""), 10)
            except ValueError:
                value = None
        if value is None or value < minimum:
            raise self.fail(node, f"{where} must be a whole number ({minimum} or more); got {text!r}")
        return value
