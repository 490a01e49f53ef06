"""The private Docker config directory of one CI job: create, copy, login, lock, teardown, gc.

Every ``ci-env setup`` creates a NEW directory ``<tmp root>/ci-env.<job>.<random>`` (mode 0700)
holding a copy of the base Docker config (``config.json`` written 0600, contexts, trust,
buildx settings) and symlinks to the base's CLI plugins, plus a marker file
(``.ci-env-job.json``) naming the job. The marker and the name pattern together are what
``teardown`` and garbage collection recognise: a directory without both is never removed.

Only the standard library is imported at module level (``filelock`` is imported by
``add_login`` only), so ``ci-env setup`` stays fast.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ci_env.cascade import Option, Resolved, given, resolve
from ci_env.ci.facts import JobFacts
from ci_env.configjson import (
    BaseConfig,
    base_config,
    check_username,
    dump,
    expand_home,
    parse,
    read_base,
    resolve_location,
    strip_credential_stores,
    with_login,
)
from ci_env.errors import ConfigError

#: Prefix of every directory this tool creates under the tmp root.
DIR_PREFIX = "ci-env."
#: Marker file inside every job directory: {"tool": "ci-env", "job_key": ..., "created": ...}.
MARKER = ".ci-env-job.json"
#: Lock file guarding read-modify-write of config.json.
LOCK_NAME = ".config.json.lock"
#: Name part used when there is no CI job identity (outside CI).
NO_JOB = "nojob"

#: What each CI family offers as the job's temp directory (after --tmp-dir and $WERF_TMP_DIR).
CI_TMP_VARIABLES: dict[str, str] = {"github": "RUNNER_TEMP"}
#: ``--tmp-dir`` as the cascade reads it (the CI's temp dir comes between the variable and the default).
TMP_DIR = Option("--tmp-dir", ("WERF_TMP_DIR",), tempfile.gettempdir)
#: Entries of the base directory copied as trees of regular files (other kinds are skipped),
#: with the names inside them that are runtime state and not copied.
COPIED_TREES: dict[str, frozenset[str]] = {
    "contexts": frozenset(),
    "trust": frozenset(),
    "buildx": frozenset({"refs", "activity", ".lock"}),
}
#: Single regular files copied from the base, besides config.json.
COPIED_FILES: tuple[str, ...] = ("features.json",)
#: Directory whose entries are symlinked (not copied: plugins are large executables).
PLUGINS_DIR = "cli-plugins"

#: Docker Hub's names, all meaning the same registry; docker stores its login under the legacy key.

_SAFE_KEY = re.compile(r"[^A-Za-z0-9_-]")


# --------------------------------------------------------------------------- names


def _name_part(job_key: str | None) -> str:
    """The job part of a directory name: only [A-Za-z0-9_-], so no key is a prefix of another's part."""
    if job_key is None:
        return NO_JOB
    safe = _SAFE_KEY.sub("_", job_key)
    if safe != job_key or len(safe) > 64:
        digest = hashlib.sha256(job_key.encode()).hexdigest()[:12]
        safe = f"{safe[:48]}-{digest}"
    return safe


# --------------------------------------------------------------------------- resolving inputs


def resolve_base(option: str | None, env: Mapping[str, str], facts: JobFacts) -> BaseConfig:
    """The base config (:func:`ci_env.configjson.read_base`) of ``--docker-config`` > ``$WERF_DOCKER_CONFIG`` >
    ``$DOCKER_CONFIG`` > ``~/.docker``, for ``facts``' CI family."""
    return read_base(resolve_location(option, env), env, facts.family)


def job_root(found: Resolved, env: Mapping[str, str]) -> Path:
    """The tmp root :func:`resolve_tmp_root` resolved, as an absolute path (``~`` expanded); not created."""
    return expand_home(found.value, env).absolute()


def resolve_tmp_root(option: str | None, env: Mapping[str, str], facts: JobFacts) -> Resolved:
    """Where job directories live, as the cascade resolves it: ``--tmp-dir`` > ``$WERF_TMP_DIR`` > the CI's
    temp dir (``$RUNNER_TEMP`` on GitHub) > the system temp dir (source ``default``); unexpanded."""
    found = resolve(given(option, TMP_DIR.flag), env, TMP_DIR, ci_tmp_dir(env, facts.family))
    assert found is not None
    return found


def ci_tmp_dir(env: Mapping[str, str], family: str) -> tuple[str | None, str] | None:
    """The CI's temp dir and its variable (:data:`CI_TMP_VARIABLES`), as a CI default for :data:`TMP_DIR`."""
    variable = CI_TMP_VARIABLES.get(family)
    return (env.get(variable), variable) if variable else None


def tmp_root(option: str | None, env: Mapping[str, str], facts: JobFacts) -> Path:
    """Where job directories live (:func:`resolve_tmp_root`), absolute. The path is returned, not created."""
    return job_root(resolve_tmp_root(option, env, facts), env)


# --------------------------------------------------------------------------- creating


def _copy_tree(source: Path, target: Path, skip: frozenset[str]) -> None:
    """Copy regular files (0600) and directories (0700) only; never sockets, FIFOs, devices, symlinks."""
    target.mkdir(mode=0o700)
    try:
        entries = list(os.scandir(source))
    except OSError:
        return
    for entry in entries:
        if entry.name in skip:
            continue
        if entry.is_dir(follow_symlinks=False):
            _copy_tree(Path(entry.path), target / entry.name, frozenset())
        elif entry.is_file(follow_symlinks=False):
            _copy_file(Path(entry.path), target / entry.name)


def _copy_file(source: Path, target: Path) -> None:
    try:
        data = source.read_bytes()
    except OSError:
        return
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _link_plugins(source: Path, target: Path) -> None:
    """A real ``cli-plugins`` dir whose entries are symlinks to the base's plugins (resolved)."""
    target.mkdir(mode=0o700)
    try:
        entries = list(os.scandir(source))
    except OSError:
        return
    for entry in entries:
        resolved = Path(entry.path).resolve()
        if not resolved.is_file():
            continue
        try:
            os.symlink(resolved, target / entry.name)
        except OSError:  # no symlinks (e.g. Windows without the privilege): a private copy
            shutil.copy2(resolved, target / entry.name)


def _copy_base_directory(directory: Path, target: Path) -> None:
    for name, skip in COPIED_TREES.items():
        source = directory / name
        if source.is_dir() and not source.is_symlink():
            _copy_tree(source, target / name, skip)
    for name in COPIED_FILES:
        source = directory / name
        if source.is_file() and not source.is_symlink():
            _copy_file(source, target / name)
    plugins = directory / PLUGINS_DIR
    if plugins.is_dir():
        _link_plugins(plugins, target / PLUGINS_DIR)


def check_tmp_root(root: Path) -> None:
    """ConfigError unless ``root`` is safe to hold job directories: not writable by every user without the
    sticky bit (anyone could rename or replace a job's directory there), and owned by the current user or
    root (its owner could do the same). ``/tmp`` (root's, mode 1777) passes. A symlink is judged by its
    target. Nothing is checked where the platform has no POSIX owners and modes (Windows)."""
    if os.name == "nt" or not hasattr(os, "getuid"):
        return
    fix = "set --tmp-dir or $WERF_TMP_DIR to a directory of your own (mode 0700)"
    try:
        info = os.stat(root)
    except OSError as exc:
        raise ConfigError(f"cannot use the tmp dir {root}: {exc.strerror}; {fix}") from None
    mode = stat.S_IMODE(info.st_mode)
    if mode & stat.S_IWOTH and not mode & stat.S_ISVTX:
        raise ConfigError(
            f"the tmp dir {root} is writable by every user without the sticky bit (mode {mode:04o}): another user "
            f"could replace this job's files there; {fix}, or add the sticky bit (chmod +t)"
        )
    if info.st_uid not in (os.getuid(), 0):
        raise ConfigError(
            f"the tmp dir {root} belongs to another user (uid {info.st_uid}), who could replace this job's files "
            f"there; {fix}"
        )


def create_job_dir(base: BaseConfig, root: Path, job_key: str | None, strip_registries: Sequence[str]) -> Path:
    """Create and return a NEW private config directory for this job under ``root``, holding the base's
    ``config.json`` without ``credsStore`` and without the ``credHelpers`` of ``strip_registries``
    (:func:`make_job_dir` with :func:`ci_env.configjson.strip_credential_stores`)."""
    return make_job_dir(base.directory, strip_credential_stores(base_config(base), strip_registries), root, job_key)


def make_job_dir(base_directory: Path | None, config: dict[str, Any], root: Path, job_key: str | None) -> Path:
    """Create and return a NEW private config directory for this job under ``root``.

    The directory (0700) is named ``ci-env.<job>.<random>`` and holds a marker file (written first, so a
    directory half made by a killed run is still this tool's to collect), copies of the contexts/trust/buildx
    settings of ``base_directory`` and symlinks to its CLI plugins, and ``config`` as ``config.json`` (0600,
    written last). The base is only read. On failure nothing is left behind. ``root`` must pass
    :func:`check_tmp_root` (ConfigError otherwise).
    """
    try:
        if root.exists() and not root.is_dir():
            raise ConfigError(
                f"the tmp dir {root} is not a directory; set --tmp-dir or $WERF_TMP_DIR to a directory"
            )
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        check_tmp_root(root)
        path = Path(tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{_name_part(job_key)}.", dir=root))
    except OSError as exc:
        raise ConfigError(
            f"cannot create a directory in {root}: {exc.strerror}; set --tmp-dir or $WERF_TMP_DIR to a writable one"
        ) from None
    try:
        os.chmod(path, 0o700)
        marker = {"tool": "ci-env", "job_key": job_key, "created": time.time()}
        _write_private(path / MARKER, json.dumps(marker).encode())
        if base_directory is not None:
            _copy_base_directory(base_directory, path)
        _write_private(path / "config.json", dump(config))
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    return path


def _write_private(path: Path, data: bytes) -> None:
    """Atomically replace ``path`` with ``data``: temp file 0600 in the same dir, fsync, os.replace."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


# --------------------------------------------------------------------------- login


def add_login(config_dir: Path, registry: str, username: str, password: str) -> None:
    """Record ``username``/``password`` for ``registry`` in ``config_dir/config.json``.

    As :func:`ci_env.configjson.with_login` says (the key docker uses; other keys naming the same
    registry dropped; no ``credHelpers`` entry for it). Safe
    while other processes do the same: a file lock around read-modify-write and an atomic
    replace, so the file is always complete JSON with mode 0600.
    """
    from filelock import FileLock, Timeout

    config_path = config_dir / "config.json"
    check_username(registry, username)
    lock = FileLock(str(config_dir / LOCK_NAME), timeout=60, mode=0o600)
    try:
        with lock:
            try:
                text = config_path.read_text(encoding="utf-8")
            except FileNotFoundError:
                text = ""
            config = with_login(parse(text, str(config_path)), registry, username, password)
            _write_private(config_path, dump(config))
    except Timeout:
        raise ConfigError(
            f"timed out waiting for the lock on {config_path}; is another ci-env process stuck?"
        ) from None


# --------------------------------------------------------------------------- finding and removing


def read_marker(path: Path) -> dict[str, Any] | None:
    """The marker of a ci-env job directory, or None if ``path`` is not one.

    A job directory is a real directory (not a symlink) owned by the current user, named
    ``ci-env.<job>.<random>``, holding a regular marker file written by this tool.
    """
    name = path.name
    if not name.startswith(DIR_PREFIX) or name.count(".") != 2:
        return None
    try:
        info = os.lstat(path)
        if not stat.S_ISDIR(info.st_mode) or (hasattr(os, "getuid") and info.st_uid != os.getuid()):
            return None
        marker_info = os.lstat(path / MARKER)
        if not stat.S_ISREG(marker_info.st_mode) or marker_info.st_size > 65536:
            return None
        data = json.loads((path / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("tool") != "ci-env":
        return None
    return data


def is_job_dir(path: Path) -> bool:
    """True when ``path`` is a ci-env job directory (see ``read_marker``)."""
    return read_marker(path) is not None


def find_job_dirs(root: Path, job_key: str) -> list[Path]:
    """This job's directories under ``root`` (every setup of the job), oldest name first;
    never another job's: the marker must name exactly ``job_key``."""
    prefix = f"{DIR_PREFIX}{_name_part(job_key)}."
    try:
        entries = sorted(e.name for e in os.scandir(root) if e.name.startswith(prefix))
    except OSError:
        return []
    found = []
    for name in entries:
        marker = read_marker(root / name)
        if marker is not None and marker.get("job_key") == job_key:
            found.append(root / name)
    return found


def remove_job_dir(path: Path) -> None:
    """Remove a ci-env job directory (symlinked plugins are unlinked, never followed).

    Raises ConfigError when ``path`` is not a ci-env job directory; a missing path is fine.
    """
    if not os.path.lexists(path):
        return
    if read_marker(path) is None:
        raise ConfigError(f"{path} is not a ci-env job directory; refusing to remove it")
    shutil.rmtree(path, ignore_errors=True)
    if os.path.lexists(path):
        shutil.rmtree(path)


def _age_reference(path: Path) -> float:
    """The latest modification time of the directory itself and its config.json."""
    newest = os.lstat(path).st_mtime
    with contextlib.suppress(OSError):
        newest = max(newest, os.lstat(path / "config.json").st_mtime)
    return newest


def collect_garbage(root: Path, max_age_hours: float = 6.0, now: float | None = None) -> list[Path]:
    """Remove this tool's job directories under ``root`` untouched for more than ``max_age_hours``
    (by the mtime of the directory and its config.json); return what was removed.

    Only directories with the ci-env name pattern AND a marker file, owned by the current user,
    are considered; errors on one directory never stop the others.
    """
    current = time.time() if now is None else now
    limit = max_age_hours * 3600
    removed: list[Path] = []
    try:
        names = [e.name for e in os.scandir(root) if e.name.startswith(DIR_PREFIX)]
    except OSError:
        return removed
    for name in sorted(names):
        path = root / name
        if read_marker(path) is None:
            continue
        try:
            if current - _age_reference(path) <= limit:
                continue
            shutil.rmtree(path)
        except OSError:
            continue
        removed.append(path)
    return removed
