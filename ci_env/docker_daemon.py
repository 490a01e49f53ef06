"""The local Docker daemon, through the docker SDK (imported on first use): the one adapter build-and-publish
(build, tag, push, pull) and cleanup of ``:local`` stages (list, inspect, remove) talk to it through, at
``$DOCKER_HOST`` or the default socket. Every failure of a build, push or pull becomes a BuildError with the
daemon's message."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ci_env.contract import SIGNATURE_LABEL
from ci_env.errors import BuildError, CiEnvError

if TYPE_CHECKING:
    from ci_env.werf_config import ImageConfig

#: seconds a daemon call may take (a build or a push of a big image takes long)
DOCKER_TIMEOUT = 3600


class Docker:
    """The daemon of ``env`` (connected on first use), with the job's ``docker_config`` for pushes and pulls: the
    few docker SDK calls ci-env makes; every failure of a build, push or pull is a BuildError with the daemon's
    message."""

    def __init__(
        self, env: Mapping[str, str], docker_config: Path | None = None, timeout: int = DOCKER_TIMEOUT,
    ) -> None:
        self.env = env
        self.docker_config = docker_config
        self.timeout = timeout
        self._api: Any = None
        self._lock = threading.Lock()
        self.builds = 0
        self.pushes = 0

    @property
    def api(self) -> Any:
        """The docker SDK's low-level client, connected on first use; BuildError when the daemon is unreachable."""
        with self._lock:
            return self._connect()

    def _connect(self) -> Any:
        if self._api is None:
            import docker

            try:
                client = docker.from_env(environment=dict(self.env), timeout=self.timeout)
                client.ping()
            except Exception as exc:  # the SDK raises DockerException, requests and OS errors alike
                where = self.env.get("DOCKER_HOST") or "the default socket"
                raise BuildError(
                    f"cannot reach the Docker daemon at {where} ({type(exc).__name__}); start it, or point "
                    "DOCKER_HOST at it"
                ) from None
            self._api = client.api
        return self._api

    def reachable(self) -> bool:
        """Whether the daemon answers (connecting now); False also when the docker SDK is missing."""
        try:
            self.api  # noqa: B018 -- connects
        except (CiEnvError, ImportError):
            return False
        return True

    def auth_for(self, registry: str) -> dict[str, str] | None:
        """The push/pull credentials for ``registry`` from the job's Docker config (never logged)."""
        from ci_env.registry.auth import credentials_for

        if self.docker_config is None:
            return None
        credential = credentials_for(registry, self.docker_config)
        if credential is None:
            return None
        if credential.identity_token:
            return {"identitytoken": credential.identity_token}
        if credential.has_basic:
            return {"username": str(credential.username), "password": str(credential.password)}
        return None

    def build(
        self, image: ImageConfig, tags: Sequence[str], labels: Mapping[str, str], log: Callable[[str], None]
    ) -> str:
        """Build ``image`` tagged with ``tags``; returns the image id. BuildError with the daemon's message."""
        try:
            dockerfile = image.dockerfile.relative_to(image.context).as_posix()
        except ValueError:
            dockerfile = str(image.dockerfile)
        image_id: str | None = None
        try:
            stream = self.api.build(
                path=str(image.context), dockerfile=dockerfile, tag=tags[0], buildargs=dict(image.args),
                target=image.target, labels=dict(labels), rm=True, forcerm=True, decode=True,
            )
            self.builds += 1
            for item in stream:
                if "error" in item:
                    detail = item.get("errorDetail", {}).get("message") or item["error"]
                    raise BuildError(f"image {image.display_name}: docker build failed: {str(detail).strip()}")
                if "stream" in item:
                    log(str(item["stream"]))
                aux = item.get("aux")
                if isinstance(aux, dict) and aux.get("ID"):
                    image_id = str(aux["ID"])
            for extra in tags[1:]:
                self.tag(tags[0], extra)
        except CiEnvError:
            raise
        except Exception as exc:
            raise BuildError(f"image {image.display_name}: docker build failed: {docker_message(exc)}") from None
        if image_id is None:
            image_id = str(self.api.inspect_image(tags[0])["Id"])
        return image_id

    def tag(self, source: str, target: str) -> None:
        """Tag the local image ``source`` as ``target`` (``REPOSITORY:TAG``)."""
        repository, tag = target.rsplit(":", 1)
        self.api.tag(source, repository, tag)

    def find_by_signature(self, signature: str) -> str | None:
        """The id of a local image labelled with ``signature``, or None."""
        found = self.api.images(filters={"label": f"{SIGNATURE_LABEL}={signature}"})
        return str(found[0]["Id"]) if found else None

    def push(self, full_name: str, registry: str, label: str, log: Callable[[str], None]) -> str | None:
        """Push ``full_name``; returns the digest the registry reported. BuildError from the push stream's error."""
        repository, tag = full_name.rsplit(":", 1)
        digest: str | None = None
        try:
            stream = self.api.push(
                repository, tag=tag, stream=True, decode=True, auth_config=self.auth_for(registry)
            )
            self.pushes += 1
            for item in stream:
                if "error" in item:
                    detail = item.get("errorDetail", {}).get("message") or item["error"]
                    raise BuildError(f"image {label}: pushing {full_name} failed: {str(detail).strip()}")
                status = item.get("status")
                if status and not item.get("progressDetail"):
                    log(f"{item.get('id', '')}: {status}" if item.get("id") else str(status))
                aux = item.get("aux")
                if isinstance(aux, dict) and aux.get("Digest"):
                    digest = str(aux["Digest"])
        except CiEnvError:
            raise
        except Exception as exc:
            raise BuildError(f"image {label}: pushing {full_name} failed: {docker_message(exc)}") from None
        return digest

    def pull(self, full_name: str, registry: str, label: str) -> None:
        """Pull ``full_name`` with the job's credentials for ``registry``; BuildError with the daemon's message."""
        repository, tag = full_name.rsplit(":", 1)
        try:
            for item in self.api.pull(repository, tag=tag, stream=True, decode=True,
                                      auth_config=self.auth_for(registry)):
                if "error" in item:
                    raise BuildError(f"image {label}: pulling {full_name} failed: {item['error']}")
        except CiEnvError:
            raise
        except Exception as exc:
            raise BuildError(f"image {label}: pulling {full_name} failed: {docker_message(exc)}") from None




def docker_message(exc: BaseException) -> str:
    """The first line of what the daemon (or the SDK) said about ``exc``."""
    explanation = getattr(exc, "explanation", None)
    text = str(explanation or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
