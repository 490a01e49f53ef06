"""The vendor removers as the dispatcher builds them: ``remover_for`` with the options' credentials."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ci_env.options import resolve_credentials
from ci_env.registry.implementations import IMPLEMENTATIONS
from ci_env.registry.reference import RepoAddress
from ci_env.registry.untag import RemoverContext, remover_for
from tests.vendors.fakeapi import FakeApi
from tests.vendors.test_quay import Quay

VENDOR_ROUTES = {"dockerhub-api", "github-api", "github-graphql", "gitlab", "harbor-api", "quay-api", "ecr-sdk", "acr"}


@pytest.mark.parametrize("name", sorted(n for n, i in IMPLEMENTATIONS.items() if i.delete_route in VENDOR_ROUTES))
def test_every_vendor_route_has_a_remover(name: str) -> None:
    remover = remover_for(IMPLEMENTATIONS[name], RemoverContext(env={}))
    assert callable(remover.preflight) and callable(remover.untag)


def test_specific_variable_reaches_the_remover(fake_api: Callable[[], FakeApi], clean_env: None) -> None:
    quay = Quay(fake_api())
    env = {"WERF_QUAY_API_URL": quay.api.url, "WERF_IMAGES_REPO_QUAY_TOKEN": "WRITE-TOKEN-SECRET",
           "WERF_REPO_QUAY_TOKEN": "READ-TOKEN-SECRET"}
    context = RemoverContext(env=env, credentials=resolve_credentials("images-repo", {}, env))
    remover = remover_for(IMPLEMENTATIONS["quay"], context)
    repo = RepoAddress("quay.io", "acme/app")
    remover.preflight(repo)
    assert remover.untag(repo, "v1") == "removed"
    assert quay.api.calls[-1].headers["Authorization"] == "Bearer WRITE-TOKEN-SECRET"
