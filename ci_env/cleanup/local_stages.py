"""Stages of a ``:local`` stages storage: the images build-and-publish left in the local Docker daemon.

build-and-publish tags each locally built image ``ci-env-stages/<project>:<signature>`` (and labels it
``werf-content-signature=<signature>``). A stage here is such an image: its tag in that repository is
the signature, its ``digest`` the image id. Removing a stage removes that tag and the image's other
local tags in the project's images repo (the names it was pushed under), so Docker deletes the image
when nothing else names it; an image some other name still uses (or a container) stays.

Talks to the daemon through ``ci_env.docker_daemon`` (the docker SDK imported only for ``:local``), at
``$DOCKER_HOST`` or the default socket. Without a reachable daemon there is nothing local to clean:
:func:`connect` returns None and the caller reports it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ci_env.cleanup.collect import parse_time
from ci_env.cleanup.policies import StageTag
from ci_env.contract import LOCAL_STAGES_REPOSITORY as REPOSITORY
from ci_env.contract import SIGNATURE_LABEL
from ci_env.registry.reference import LocalRepository

TIMEOUT = 120


def repository(project: str) -> LocalRepository:
    """``ci-env-stages/<project>``: where the project's local stages are tagged."""
    return LocalRepository("", f"{REPOSITORY}/{project}")


def connect(env: Mapping[str, str]) -> Any | None:
    """The docker SDK's low-level API client for the daemon of ``env`` (``ci_env.docker_daemon``), or None when it
    cannot be reached."""
    from ci_env.docker_daemon import Docker

    daemon = Docker(env, timeout=TIMEOUT)
    return daemon.api if daemon.reachable() else None


@dataclass(frozen=True)
class LocalStages:
    """The local stages of ``project`` in the daemon behind ``api`` (a docker SDK ``APIClient``)."""

    api: Any
    project: str

    @property
    def repository(self) -> LocalRepository:
        return repository(self.project)

    def collect(self) -> list[StageTag]:
        """Every local stage of the project (tag = signature, digest = image id, created = image creation)."""
        stages: list[StageTag] = []
        prefix = f"{self.repository}:"
        for image in self.api.images(filters={"label": SIGNATURE_LABEL}):
            labels = image.get("Labels") or {}
            signature = labels.get(SIGNATURE_LABEL, "")
            if f"{prefix}{signature}" not in (image.get("RepoTags") or []):
                continue  # another project's image, or not a stage
            created = image.get("Created")
            when = parse_time(_iso(created)) if isinstance(created, int) else None
            stages.append(StageTag(self.repository, signature, str(image.get("Id") or ""), when))
        return sorted(stages, key=lambda s: s.tag)

    def remove(self, signatures: Sequence[str], also_remove: Callable[[str], bool]) -> dict[str, tuple[str, str]]:
        """Remove each stage's tag, and the other local tags of its image that ``also_remove(name)`` accepts.

        Returns signature -> (``removed`` | ``absent`` | ``failed``, reason). A tag already gone is
        ``absent``; Docker's refusal (an image a container uses) is ``failed`` with Docker's message.
        """
        from docker.errors import APIError, ImageNotFound

        outcomes: dict[str, tuple[str, str]] = {}
        for signature in signatures:
            name = f"{self.repository}:{signature}"
            try:
                image = self.api.inspect_image(name)
            except ImageNotFound:
                outcomes[signature] = ("absent", "")
                continue
            except APIError as exc:
                outcomes[signature] = ("failed", _message(exc))
                continue
            names = [name] + [t for t in image.get("RepoTags") or [] if t != name and also_remove(t)]
            try:
                for tag in names:
                    self.api.remove_image(tag)
            except ImageNotFound:
                pass
            except APIError as exc:
                outcomes[signature] = ("failed", _message(exc))
                continue
            outcomes[signature] = ("removed", "")
        return outcomes


def _iso(timestamp: int) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat()


def _message(exc: Exception) -> str:
    explanation = getattr(exc, "explanation", None)
    return f"Docker: {explanation or exc}"
