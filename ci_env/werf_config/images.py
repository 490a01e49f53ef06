"""werf.yaml: the project's images, rendered with Jinja2 and validated with line numbers.

The file is a multi-document YAML stream: one meta document (``project: NAME``,
``configVersion: 1``) and one document per image (``image: NAME`` or
``image: ~``, with ``dockerfile``, ``context``, ``target``, ``args``). Before
parsing it is rendered with Jinja2, where ``env("NAME", "default")`` reads the
environment and ``project_dir`` is the project directory; it is rendered in Jinja2's
sandbox (``ci_env.werf_config.render``), so it cannot run code. Build contexts and Dockerfiles must lie inside the
project directory (after following symlinks). Every mistake is a ``ConfigError``
naming the file, the line and what to do.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ci_env.errors import ConfigError, did_you_mean
from ci_env.werf_config.cleanup import CleanupConfig, parse_cleanup
from ci_env.werf_config.render import render

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
            raise ConfigError(f"{path}:{lines.get(str(key), 0)}: unknown key {key!r}{did_you_mean(str(key), allowed)} "
                              f"(valid keys here: {valid})")


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
