"""The images Kubernetes objects reference (pure: decoded JSON objects in, normalised references out).

One table (:data:`KINDS`) says which kinds cleanup reads, where each keeps its pod spec and which
client call lists it. From a pod spec every container counts: ``containers``, ``initContainers`` and
``ephemeralContainers``. A Pod's status adds what really runs: each container status's ``image`` and
its ``imageID`` (``docker-pullable://host/repo@sha256:...``, ``host/repo@sha256:...``), whose digest
protects both the repository the status names and the repository the container spec names (a
registry mirror may rewrite one of them).

Image strings are normalised with the project's own reference parser, as cleanup writes repositories
(``str(RepoAddress)``), with Docker Hub's official images under ``docker.io/library/``: ``nginx``,
``nginx:latest``, ``docker.io/library/nginx`` and ``index.docker.io/library/nginx:latest`` are all
``docker.io/library/nginx:latest``; an explicit default port is dropped (``host:443/app`` is ``host/app``,
so is ``host:80/app``); a reference without tag or digest means ``:latest``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ci_env.errors import ConfigError
from ci_env.registry.reference import RepoAddress, parse_image_ref, repository_identity

#: The repository of a reference that names a digest only (a bare ``sha256:...`` imageID).
ANY_REPOSITORY = ""


@dataclass(frozen=True)
class Kind:
    """A kind cleanup lists: its name, REST resource, the client class and method stem, and where its pod
    spec is (``("spec", "template", "spec")`` for controllers)."""

    name: str
    resource: str
    group: str
    version: str
    api: str
    method: str
    pod_spec: tuple[str, ...]
    skips_finished: bool = False

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None) -> str:
        """The documented list endpoint: ``/apis/apps/v1/deployments`` or ``.../namespaces/NS/deployments``."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        return f"{base}/namespaces/{namespace}/{self.resource}" if namespace else f"{base}/{self.resource}"

    def list_method(self, namespaced: bool) -> str:
        """The ``kubernetes`` client method listing this kind in all namespaces or in one."""
        return f"list_namespaced_{self.method}" if namespaced else f"list_{self.method}_for_all_namespaces"


_TEMPLATE = ("spec", "template", "spec")

#: Every kind cleanup reads, in the order a reason names them (the controller before its pods).
KINDS: tuple[Kind, ...] = (
    Kind("Deployment", "deployments", "apps", "v1", "AppsV1Api", "deployment", _TEMPLATE),
    Kind("StatefulSet", "statefulsets", "apps", "v1", "AppsV1Api", "stateful_set", _TEMPLATE),
    Kind("DaemonSet", "daemonsets", "apps", "v1", "AppsV1Api", "daemon_set", _TEMPLATE),
    Kind("CronJob", "cronjobs", "batch", "v1", "BatchV1Api", "cron_job",
         ("spec", "jobTemplate", "spec", "template", "spec")),
    Kind("Job", "jobs", "batch", "v1", "BatchV1Api", "job", _TEMPLATE, skips_finished=True),
    Kind("ReplicationController", "replicationcontrollers", "", "v1", "CoreV1Api", "replication_controller",
         _TEMPLATE),
    Kind("ReplicaSet", "replicasets", "apps", "v1", "AppsV1Api", "replica_set", _TEMPLATE),
    Kind("Pod", "pods", "", "v1", "CoreV1Api", "pod", ("spec",)),
)
KIND_RANK = {kind.name: rank for rank, kind in enumerate(KINDS)}

_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_STATUS_LISTS = ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_BARE_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class ImageUse:
    """One image an object uses: a normalised repository with a tag, a digest, or both
    (``repository`` is :data:`ANY_REPOSITORY` for a digest known without its repository)."""

    repository: str
    tag: str | None = None
    digest: str | None = None


@lru_cache(maxsize=4096)
def repository_key(repo: RepoAddress) -> str:
    """The repository's one key whatever its spelling (:func:`~ci_env.registry.reference.repository_identity`):
    ``docker.io/library/nginx`` for ``nginx``; ``host/app`` for ``host:443/app``; a ``:local`` stages repository
    as the name Kubernetes would give ``ci-env-stages/<project>`` (on Docker Hub), so a cluster running on the
    local daemon protects its stages."""
    return repository_identity(repo)


@lru_cache(maxsize=16384)
def parse_image(text: str) -> ImageUse | None:
    """A container's ``image`` (``nginx``, ``nginx:1``, ``host:5000/a/b@sha256:...``) normalised; an implied
    tag is ``latest``; None for a string that is not an image reference."""
    text = text.strip()
    if not text:
        return None
    name = text.split("@", 1)[0]
    if ":" not in name.rsplit("/", 1)[-1] and "@" not in text:
        text += ":latest"
    try:
        ref = parse_image_ref(text)
    except ConfigError:
        return None
    return ImageUse(repository_key(ref.repo), ref.tag, ref.digest)


@lru_cache(maxsize=16384)
def parse_image_id(text: str) -> ImageUse | None:
    """A container status's ``imageID`` (``docker-pullable://host/repo@sha256:...``, ``host/repo@sha256:...``
    or a bare ``sha256:...``) as a digest use; None when it names no digest."""
    text = _SCHEME.sub("", text.strip())
    if _BARE_DIGEST.fullmatch(text):
        return ImageUse(ANY_REPOSITORY, None, text)
    if "@" not in text:
        return None
    parsed = parse_image(text)
    if parsed is None or parsed.digest is None:
        return None
    return ImageUse(parsed.repository, None, parsed.digest)


def dig(document: Any, path: Sequence[str]) -> Any:
    """``document[path[0]][path[1]]...``, or None where a step is missing or not an object."""
    for step in path:
        if not isinstance(document, Mapping):
            return None
        document = document.get(step)
    return document


def _entries(holder: Any, keys: Sequence[str]) -> Iterator[Mapping[str, Any]]:
    if not isinstance(holder, Mapping):
        return
    for key in keys:
        for entry in holder.get(key) or ():
            if isinstance(entry, Mapping):
                yield entry


def finished(job: Mapping[str, Any]) -> bool:
    """True for a Job whose ``Complete`` or ``Failed`` condition is ``True``: its pods never start again."""
    for condition in _entries(job.get("status"), ("conditions",)):
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return True
    return False


def image_uses(kind: Kind, obj: Mapping[str, Any]) -> list[ImageUse]:
    """Every image ``obj`` (of ``kind``) references, and for a Pod every image its status says runs."""
    uses: list[ImageUse] = []
    spec_repos: dict[str, str] = {}
    for container in _entries(dig(obj, kind.pod_spec), _CONTAINER_LISTS):
        use = parse_image(str(container.get("image") or ""))
        if use is not None:
            uses.append(use)
            spec_repos[str(container.get("name") or "")] = use.repository
    for status in _entries(obj.get("status"), _STATUS_LISTS):
        use = parse_image(str(status.get("image") or ""))
        if use is not None:
            uses.append(use)
        running = parse_image_id(str(status.get("imageID") or ""))
        if running is None:
            continue
        uses.append(running)
        spec_repo = spec_repos.get(str(status.get("name") or ""))
        if spec_repo is not None and spec_repo != running.repository:
            uses.append(ImageUse(spec_repo, None, running.digest))
    return uses
