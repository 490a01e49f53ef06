"""Untag through 429s, 500s and dropped connections: each tag ends removed or reported failed, nothing else goes."""

from __future__ import annotations

from ci_env.registry.client import RegistryClient
from ci_env.registry.http import make_session
from ci_env.registry.reference import RepoAddress
from ci_env.registry.untag import Capabilities, untag_all
from tests.registry_client.faultproxy import FaultProxy
from tests.registry_client.scenarios import assert_only_the_asked_went, push_kept_and_dropped
from tests.services.registry import RegistryService


class _Remover:
    capabilities = Capabilities()

    def __init__(self, client: RegistryClient) -> None:
        self.client = client

    def preflight(self, repo: RepoAddress) -> None:
        self.client.can_delete(repo.path)

    def untag(self, repo: RepoAddress, tag: str) -> str:
        return self.client.untag(repo.path, tag)


def test_untag_through_faults_removes_only_what_was_asked(registry_open: RegistryService, repo: str) -> None:
    direct = RegistryClient(registry_open.host)
    kept, drops = push_kept_and_dropped(direct, repo)
    proxy = FaultProxy(registry_open.host, seed=11)
    try:
        faulty = RegistryClient(proxy.host, session=make_session(retries=4, backoff=0.01))
        remover = _Remover(faulty)
        address = RepoAddress(proxy.host, repo)
        summary = untag_all([(address, tag) for tag in drops], lambda _: remover, parallel=4)
    finally:
        proxy.stop()
    assert proxy.faults, "the proxy injected no fault: the test would prove nothing"
    assert_only_the_asked_went(direct, repo, kept, drops, summary)
