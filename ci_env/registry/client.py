"""The registry client: one registry's Registry API verbs and its untag engine, behind one object.

``RegistryClient`` composes the three concerns, each in its own module, as regclient splits its verbs:
the transport (``ci_env.registry.transport``: requests, redirects, auth, errors), the Registry API verbs
(``ci_env.registry.api``: tags, manifests, blobs, referrers, retag), and the untag engine
(``ci_env.registry.untag_engine``: remove exactly the tags named, through a placeholder, never an image).
``ClientPool`` shares one client per registry host between every caller and thread.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ci_env.registry.api import LISTING_PARALLELISM, ManifestInfo, RegistryApi, TagInfo
from ci_env.registry.transport import Transport
from ci_env.registry.untag_engine import OutcomeReport, TagOutcome, UntagEngine

if TYPE_CHECKING:
    import requests

    from ci_env.registry.outcomes import Status
    from ci_env.registry.reference import RepoAddress

__all__ = ["LISTING_PARALLELISM", "ClientPool", "ManifestInfo", "RegistryClient", "TagInfo"]


class RegistryClient(RegistryApi):
    """Registry API operations on one registry (``host[:port]``), and removing its tags without collateral;
    safe to share between threads."""

    def __init__(
        self,
        registry: str,
        *,
        docker_config: Path | None = None,
        credentials: tuple[str, str] | None = None,
        insecure_registries: Sequence[str] = (),
        session: requests.Session | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(Transport(registry, docker_config=docker_config, credentials=credentials,
                                   insecure_registries=insecure_registries, session=session, env=env))
        self.engine = UntagEngine(self)

    def untag(self, path: str, tag: str) -> Status:
        """Remove exactly ``tag`` from ``path``: ``removed``, or ``absent`` (``UntagEngine.untag``)."""
        return self.engine.untag(path, tag)

    def untag_many(
        self, path: str, tags: Sequence[str], *, parallel: int = LISTING_PARALLELISM,
        report: OutcomeReport | None = None, expected: Mapping[str, str] | None = None,
        known: Mapping[str, str | None] | None = None,
    ) -> dict[str, TagOutcome]:
        """Remove exactly ``tags`` from ``path`` in one batch (``UntagEngine.untag_many``)."""
        return self.engine.untag_many(path, tags, parallel=parallel, report=report, expected=expected, known=known)

    def retire_tags(self, path: str, tags: Sequence[str], *, parallel: int = LISTING_PARALLELISM,
                    ) -> dict[str, TagOutcome]:
        """Remove ``tags`` only ci-env writes, without reading them (``UntagEngine.retire_tags``)."""
        return self.engine.retire_tags(path, tags, parallel=parallel)

    def point_at_placeholder(self, path: str, tag: str) -> str:
        """Point ``tag`` at a new, unique placeholder manifest; its digest (``UntagEngine.point_at_placeholder``)."""
        return self.engine.point_at_placeholder(path, tag)

    def ensure_placeholder_config(self, path: str) -> None:
        """Make the placeholder's config blob exist in ``path`` (``UntagEngine.ensure_placeholder_config``)."""
        self.engine.ensure_placeholder_config(path)


class ClientPool:
    """One ``RegistryClient`` per registry host, made on first use and shared by every thread.

    ``pool(repo_or_host)`` takes a ``RepoAddress`` (its API host is used) or a ``host[:port]``. Sharing one
    client per host shares its session, tokens, phase locks and the repositories known to hold the placeholder's
    config blob.
    """

    def __init__(
        self,
        docker_config: Path | None = None,
        insecure_registries: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.docker_config = docker_config
        self.insecure_registries = tuple(insecure_registries)
        self.env: Mapping[str, str] = os.environ if env is None else env
        self._clients: dict[str, RegistryClient] = {}
        self._lock = threading.Lock()

    def __call__(self, repo_or_host: RepoAddress | str) -> RegistryClient:
        """The client of the registry of ``repo_or_host`` (made now when it is the first use of that host)."""
        host = repo_or_host if isinstance(repo_or_host, str) else repo_or_host.api_host()
        with self._lock:
            client = self._clients.get(host)
            if client is None:
                client = RegistryClient(host, docker_config=self.docker_config,
                                        insecure_registries=self.insecure_registries, env=self.env)
                self._clients[host] = client
            return client

    def put(self, host: str, client: RegistryClient) -> None:
        """Use ``client`` for ``host`` from now on (a client on a special session, in tests)."""
        with self._lock:
            self._clients[host] = client

    @property
    def clients(self) -> dict[str, RegistryClient]:
        """A snapshot of the clients made so far, by host."""
        with self._lock:
            return dict(self._clients)

    def request_count(self) -> int:
        """HTTP requests made by every client of the pool so far."""
        return sum(client.request_count() for client in self.clients.values())

    def close(self) -> None:
        """Close every client's pooled connections."""
        for client in self.clients.values():
            client.close()
