"""An offline wheelhouse for installing ci-env the way CI jobs do, without reaching PyPI.

``build_wheelhouse`` writes the ci-env wheel built from this checkout by its build backend
(hatchling, already installed with the test extras, so no network) and, repacked from this
interpreter's site-packages, a wheel of every distribution
it needs (with the requested extras). ``pip install --no-index --find-links DIR 'ci-env[docker]'``
then installs exactly what a job would get from PyPI, in seconds and with no network.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.metadata as md
import io
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path

from packaging.requirements import Requirement

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: pip's vendored copy of the same parser
    from pip._vendor import tomli as tomllib

_SKIP_INSTALLED = {"INSTALLER", "REQUESTED", "direct_url.json", "RECORD"}


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _record_line(name: str, data: bytes) -> list[str]:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return [name, f"sha256={digest}", str(len(data))]


def _write_wheel(path: Path, files: Iterable[tuple[str, bytes]], dist_info: str) -> Path:
    rows: list[list[str]] = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files:
            archive.writestr(name, data)
            rows.append(_record_line(name, data))
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerows([*rows, [f"{dist_info}/RECORD", "", ""]])
        archive.writestr(f"{dist_info}/RECORD", out.getvalue())
    return path


def build_project_wheel(project: Path, dest: Path) -> Path:
    """Build the project's wheel into ``dest`` with its real build backend (hatchling, no network)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dest),
         str(project)],
        check=True,
        capture_output=True,
    )
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    return next(dest.glob(f"{_normalize(meta['name'])}-*-py3-none-any.whl"))


def repack_installed(name: str, dest: Path) -> Path:
    """Write an installed distribution back into a wheel (its RECORD's files, its own WHEEL tag)."""
    dist = md.distribution(name)
    wheel_meta = dist.read_text("WHEEL") or ""
    tag = next(line.split(":", 1)[1].strip() for line in wheel_meta.splitlines() if line.startswith("Tag:"))
    files: list[tuple[str, bytes]] = []
    dist_info = ""
    for entry in dist.files or []:
        posix = entry.as_posix()
        if posix.startswith("..") or "__pycache__" in posix or posix.endswith(".pyc"):
            continue
        if ".dist-info/" in posix:
            dist_info = posix.split("/", 1)[0]
            if posix.split("/", 1)[1] in _SKIP_INSTALLED:
                continue
        files.append((posix, Path(str(dist.locate_file(entry))).read_bytes()))
    filename = f"{_normalize(dist.metadata['Name'])}-{dist.version}-{tag}.whl"
    return _write_wheel(dest / filename, files, dist_info)


def _closure(requirements: Iterable[Requirement]) -> set[str]:
    """Names of the installed distributions the requirements need, recursively (markers honoured)."""
    seen: set[str] = set()
    todo = list(requirements)
    while todo:
        req = todo.pop()
        name = _normalize(req.name)
        if name in seen:
            continue
        seen.add(name)
        for text in md.requires(req.name) or []:
            sub = Requirement(text)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in (req.extras or {""})):
                todo.append(sub)
    return seen


def build_wheelhouse(project: Path, dest: Path, extras: Iterable[str] = ("docker",)) -> Path:
    """Fill ``dest`` with the project's wheel and the wheels of everything it needs with ``extras``."""
    dest.mkdir(parents=True, exist_ok=True)
    wheel = build_project_wheel(project, dest)
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(dep) for dep in meta["dependencies"]]
    for extra in extras:
        wanted += [Requirement(dep) for dep in meta["optional-dependencies"][extra]]
    for name in sorted(_closure(wanted)):
        repack_installed(name, dest)
    return wheel
