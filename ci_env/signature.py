"""Content signature of an image: what decides whether an earlier build can be reused.

The signature is the sha256 (hex) over, in this order, each item length-framed so that
no two different inputs can produce the same byte stream:

- a version marker (:data:`VERSION`), bumped whenever this recipe changes;
- the image name (``~`` for the nameless image), so two images never share one built
  image and its labels;
- the Dockerfile's bytes;
- every path of the context that ``.dockerignore`` leaves (docker-py's own matcher,
  ``docker.utils.build.exclude_paths``), sorted, each with its kind (file, directory,
  symlink), its executable bit, and its content (files, streamed) or target (symlinks);
- the build args, sorted by name;
- the target stage.

Anything else (timestamps, owners, other permission bits) does not change the signature,
because the legacy builder does not put it into the image either, apart from the
executable bit.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from ci_env.errors import ConfigError

VERSION = "ci-env-signature-v1"
_CHUNK = 1 << 20


def dockerignore_patterns(context: Path) -> list[str]:
    """The patterns of ``context/.dockerignore`` as the docker SDK reads them (comments and blanks dropped)."""
    path = context / ".dockerignore"
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def context_paths(context: Path, dockerfile: Path) -> list[str]:
    """Relative paths (``/``-separated, sorted) of everything in ``context`` that ``.dockerignore`` leaves."""
    from docker.utils.build import exclude_paths

    try:
        relative_dockerfile = dockerfile.relative_to(context).as_posix()
    except ValueError:
        relative_dockerfile = None
    paths = exclude_paths(str(context), dockerignore_patterns(context), dockerfile=relative_dockerfile)
    return sorted(Path(p).as_posix() for p in paths)


class _Hasher:
    """sha256 with length-framed fields."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()

    def field(self, data: bytes) -> None:
        self._hash.update(len(data).to_bytes(8, "big"))
        self._hash.update(data)

    def text(self, value: str) -> None:
        self.field(value.encode("utf-8", "surrogateescape"))

    def stream(self, path: Path, size: int) -> None:
        self._hash.update(size.to_bytes(8, "big"))
        read = 0
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                read += len(chunk)
                self._hash.update(chunk)
        if read != size:
            raise ConfigError(f"{path} changed while its signature was computed; run the command again")

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def content_signature(
    name: str | None,
    context: Path,
    dockerfile: Path,
    args: Mapping[str, str],
    target: str | None,
    paths: Iterable[str] | None = None,
) -> str:
    """The image's content signature: 64 lower-case hex digits, equal for equal build inputs.

    ``paths`` defaults to :func:`context_paths`; a file that cannot be read is a ConfigError
    naming it.
    """
    hasher = _Hasher()
    hasher.text(VERSION)
    hasher.text("~" if name is None else name)
    try:
        hasher.field(dockerfile.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read Dockerfile {dockerfile}: {exc.strerror}") from None
    selected = context_paths(context, dockerfile) if paths is None else sorted(paths)
    hasher.text(str(len(selected)))
    for relative in selected:
        _add_path(hasher, context, relative)
    hasher.text(str(len(args)))
    for key in sorted(args):
        hasher.text(key)
        hasher.text(args[key])
    hasher.text("" if target is None else f"target:{target}")
    return hasher.hexdigest()


def _add_path(hasher: _Hasher, context: Path, relative: str) -> None:
    path = context / relative
    try:
        info = os.lstat(path)
        hasher.text(relative)
        if stat.S_ISLNK(info.st_mode):
            hasher.text("symlink")
            hasher.text(os.readlink(path))
        elif stat.S_ISDIR(info.st_mode):
            hasher.text("dir")
        elif stat.S_ISREG(info.st_mode):
            hasher.text("file+x" if info.st_mode & stat.S_IXUSR else "file")
            hasher.stream(path, info.st_size)
        else:
            hasher.text("other")
    except OSError as exc:
        raise ConfigError(
            f"cannot read {path} of the build context: {exc.strerror}; fix its permissions or list it in .dockerignore"
        ) from None
