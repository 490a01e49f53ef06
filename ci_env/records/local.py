"""The record store of the ``:local`` stages storage: one JSON file per record under a per-project directory."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ci_env.errors import ConfigError


class LocalStore:
    """Records as JSON files under one per-project directory (stages storage ``:local``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def description(self) -> str:
        return str(self.directory)

    def _path(self, kind: str, key: str) -> Path:
        return self.directory / kind / f"{key}.json"

    def _unwritable(self, exc: OSError) -> ConfigError:
        return ConfigError(
            f"cannot write the records of the :local stages storage under {self.directory} "
            f"({exc.strerror or type(exc).__name__}); set XDG_STATE_HOME to a writable directory"
        )

    def put(self, kind: str, key: str, record: Mapping[str, Any]) -> None:
        folder = self.directory / kind
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, temp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=folder)
        except OSError as exc:
            raise self._unwritable(exc) from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(dict(record), handle, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self._path(kind, key))
        except OSError as exc:
            Path(temp).unlink(missing_ok=True)
            raise self._unwritable(exc) from None
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    def put_new(self, kind: str, key: str, record: Mapping[str, Any]) -> bool:
        """Write the record unless one exists under ``key`` (never replaced); True when written."""
        if self._path(kind, key).exists():
            return False
        folder = self.directory / kind
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, temp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(dict(record), handle, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.link(temp, self._path(kind, key))  # atomic, and fails when another writer was first
            return True
        except FileExistsError:
            return False
        finally:
            Path(temp).unlink(missing_ok=True)

    def keys(self, kind: str) -> list[str]:
        folder = self.directory / kind
        return sorted(path.stem for path in folder.glob("*.json")) if folder.is_dir() else []

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        try:
            data = json.loads(self._path(kind, key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def all(self, kind: str) -> list[dict[str, Any]]:
        result = []
        for key in self.keys(kind):
            data = self.get(kind, key)
            if data is not None:
                result.append(data)
        return result

    def delete(self, kind: str, key: str) -> bool:
        path = self._path(kind, key)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise self._unwritable(exc) from None
        return True

    def delete_many(self, kind: str, keys: Sequence[str], parallel: int = 8) -> int:
        """Delete the records of ``keys``; returns how many existed."""
        return sum(self.delete(kind, key) for key in keys)


def state_directory(project: str, env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/ci-env/<project>``, else ``~/.local/state/ci-env/<project>``."""
    environment = os.environ if env is None else env
    base = environment.get("XDG_STATE_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path(environment.get("HOME") or Path.home()) / (
        ".local/state"
    )
    return root / "ci-env" / project
